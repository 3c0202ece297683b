#!/usr/bin/env bash
# Run the dpc_elt DAG once per month given, in order, in this process tree (`airflow dags test`):
# scripts/run_month.sh 202503 202504. Stops at the first month whose run does not succeed.
# Progress: a start line per month ("month 2/6"), one line per task as it finishes (from run_local,
# through file descriptor 3, while Airflow's own log goes to a file), and an end line with the time taken.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: run_month.sh YYYYMM [YYYYMM ...]" >&2; exit 2; }
for yyyymm in "$@"; do
  [[ $yyyymm =~ ^(19|20)[0-9]{2}(0[1-9]|1[0-2])$ ]] || { echo "run_month.sh: $yyyymm is not a month yyyymm" >&2; exit 2; }
done
scripts/airflow_init.sh
total=$#
n=0
all_started=$SECONDS
for yyyymm in "$@"; do
  n=$((n + 1))
  started=$SECONDS
  echo "==> month $n/$total: dpc_elt for $yyyymm (started $(date +%H:%M:%S))"
  log="$AIRFLOW_HOME/run-$yyyymm.log"
  if ! python -m dpc_elt.dev.run_local --yyyymm "$yyyymm" --progress-fd 3 3>&1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "<== month $n/$total: dpc_elt for $yyyymm FAILED after $((SECONDS - started)) s: full log in $log" >&2
    exit 1
  fi
  # The summary run_local prints: run state, every task's state, where the outputs went.
  sed -n "/^dpc_elt $yyyymm: run/,\$p" "$log"
  echo "<== month $n/$total: $yyyymm done in $((SECONDS - started)) s ($((SECONDS - all_started)) s so far)"
done
