#!/usr/bin/env bash
# make demo: synthetic DPC files for a few months, then the whole dpc_elt DAG for each, in order,
# on the embedded default (local files + DuckDB + dbt-duckdb through Cosmos).
# Progress: one "step i/3" line per stage; the generator and run_month.sh report per month and task.
set -euo pipefail
cd "$(dirname "$0")/.."
range=${1:-202503-202505}
from=${range%-*}; to=${range#*-}
started=$SECONDS
if [ ! -f "$DPC_DATA_DIR/raw/yyyymm=$to/_manifest.json" ]; then
  echo "==> step 1/3: generating synthetic DPC files for $range under $DPC_DATA_DIR/raw"
  python -m dpc_elt.dev.synthetic --facilities 3 --months "$range" --out "$DPC_DATA_DIR/raw" --seed 1
else
  echo "==> step 1/3: synthetic DPC files for $range already under $DPC_DATA_DIR/raw (delete them to regenerate)"
fi
# shellcheck disable=SC2046
set -- $(scripts/months.sh "$from" "$to")
echo "==> step 2/3: running dpc_elt for $# month(s): $*"
scripts/run_month.sh "$@"
echo
echo "==> step 3/3: outputs (demo finished in $((SECONDS - started)) s)"
echo "Parquet files and quality reports:"
find "$DPC_DATA_DIR/processed" -type f | sort | sed 's/^/  /'
echo "Quality report of $to (open it in a browser): $DPC_DATA_DIR/processed/yyyymm=$to/_quality_report.html"
echo "Notifications (one JSON line per run): $DPC_DATA_DIR/outbox/notifications.jsonl"
tail -n 1 "$DPC_DATA_DIR/outbox/notifications.jsonl" | python -c 'import json,sys; print(json.loads(sys.stdin.read())["text"])'
