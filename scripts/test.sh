#!/usr/bin/env bash
# make test's suite: the native topology (pytest -m slow: PostgreSQL, S3 and Airflow's components as
# processes, mostly waiting on its own scheduler) runs beside the rest of the suite, which keeps the
# other core busy; CI stays well under 30 minutes on 2 cores. Extra arguments go to both runs.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts
slow_log=test-artifacts/pytest-slow.log
.venv/bin/pytest -m slow -p no:cacheprovider "$@" >"$slow_log" 2>&1 &
slow=$!
.venv/bin/pytest -m "not slow" "$@"
rest_status=$?
wait "$slow"
slow_status=$?
echo "==> tests/topology (pytest -m slow, ran alongside; full log in $slow_log)"
tail -n 25 "$slow_log"
exit $(( rest_status != 0 ? rest_status : slow_status ))
