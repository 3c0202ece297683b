#!/usr/bin/env bash
# make demo: synthetic DPC files for a few months, then the whole dpc_elt DAG for each, in order,
# on the embedded default (local files + DuckDB + dbt-duckdb through Cosmos).
set -euo pipefail
cd "$(dirname "$0")/.."
range=${1:-202503-202505}
from=${range%-*}; to=${range#*-}
if [ ! -f "$DPC_DATA_DIR/raw/yyyymm=$to/_manifest.json" ]; then
  echo "==> generating synthetic DPC files for $range under $DPC_DATA_DIR/raw"
  python -m dpc_elt.synthetic --facilities 3 --months "$range" --out "$DPC_DATA_DIR/raw" --seed 1
fi
# shellcheck disable=SC2046
scripts/run_month.sh $(scripts/months.sh "$from" "$to")
echo
echo "==> demo finished"
echo "Parquet files:"
find "$DPC_DATA_DIR/processed" -type f | sort | sed 's/^/  /'
echo "Notifications (one JSON line per run): $DPC_DATA_DIR/outbox/notifications.jsonl"
tail -n 1 "$DPC_DATA_DIR/outbox/notifications.jsonl" | python -c 'import json,sys; print(json.loads(sys.stdin.read())["text"])'
