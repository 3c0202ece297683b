#!/usr/bin/env bash
# Build include/dbt/target/manifest.json (Cosmos renders the DAG from it; nothing runs dbt at parse).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo/include/dbt"
# The tasks' warehouse path (as the Makefile and dpc_elt.settings resolve it), --profile and --target,
# and no --vars: dbt keys its partial-parse state on them (connection values included), so the
# first dbt task of a group starts from this parse instead of parsing the whole project again.
# dbt parse does not create the DuckDB file.
export DPC_DUCKDB_PATH=${DPC_DUCKDB_PATH:-${DPC_DATA_DIR:-$repo/data}/warehouse/dpc.duckdb}
../../.venv/bin/dbt parse --quiet --profiles-dir . --profile dpc_elt --target "${DPC_DBT_TARGET:-duckdb}"
echo "==> dbt manifest: include/dbt/target/manifest.json"
