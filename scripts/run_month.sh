#!/usr/bin/env bash
# Run the dpc_elt DAG once per month given, in order, in this process tree (`airflow dags test`):
# scripts/run_month.sh 202503 202504. Stops at the first month whose run does not succeed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: run_month.sh YYYYMM [YYYYMM ...]" >&2; exit 2; }
scripts/airflow_init.sh
for yyyymm in "$@"; do
  [[ $yyyymm =~ ^(19|20)[0-9]{2}(0[1-9]|1[0-2])$ ]] || { echo "run_month.sh: $yyyymm is not a month yyyymm" >&2; exit 2; }
  echo "==> dpc_elt for $yyyymm"
  log="$AIRFLOW_HOME/run-$yyyymm.log"
  if ! python -m dpc_elt.run_local --yyyymm "$yyyymm" >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "dpc_elt for $yyyymm failed: full log in $log" >&2
    exit 1
  fi
  # The summary run_local prints: run state, every task's state, where the outputs went.
  sed -n "/^dpc_elt $yyyymm: run/,\$p" "$log"
done
