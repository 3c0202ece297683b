#!/usr/bin/env bash
# Run the dpc_elt DAG for each month given, in order, in ONE process (`dag.test`; Airflow, the DAG and
# dbt start once): scripts/run_month.sh 202503 202504. Stops at the first month that does not succeed.
# Progress (a start line per month, where its manifest is looked for, one line per task as it
# finishes, each month's summary) reaches the terminal through file descriptor 3, while Airflow's own
# log goes to a file. MANIFEST_WAIT_MINUTES (default 0: a missing manifest fails at once) waits for a
# delivery, with a line every minute.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: run_month.sh YYYYMM [YYYYMM ...]" >&2; exit 2; }
for yyyymm in "$@"; do
  [[ $yyyymm =~ ^(19|20)[0-9]{2}(0[1-9]|1[0-2])$ ]] || { echo "run_month.sh: $yyyymm is not a month yyyymm" >&2; exit 2; }
done
scripts/airflow_init.sh
log="$AIRFLOW_HOME/run-$1${2:+-${!#}}.log"
started=$SECONDS
if ! python -m dpc_elt.dev.run_local --yyyymm "$@" --manifest-wait-minutes "${MANIFEST_WAIT_MINUTES:-0}" \
    --progress-fd 3 3>&1 >"$log" 2>&1; then
  echo "<== dpc_elt stopped after $((SECONDS - started)) s: Airflow's log is $log (last lines below)" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
echo "<== $# month(s) in $((SECONDS - started)) s; Airflow's log: $log"
