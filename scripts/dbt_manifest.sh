#!/usr/bin/env bash
# Build include/dbt/target/manifest.json (Cosmos renders the DAG from it; nothing runs dbt at parse).
set -euo pipefail
cd "$(dirname "$0")/../include/dbt"
export DPC_DUCKDB_PATH=${DPC_DUCKDB_PATH:-/tmp/dpc-elt-parse.duckdb}
../../.venv/bin/dbt parse --quiet --profiles-dir . --target "${DPC_DBT_TARGET:-duckdb}"
echo "==> dbt manifest: include/dbt/target/manifest.json"
