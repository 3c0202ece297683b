#!/usr/bin/env bash
# docker-compose.yaml's topology without Docker, for a developer (the same code tests/topology runs):
#   scripts/services.sh up [--api-port 8080 --s3-port 9000 --postgres-port 55432]
#   scripts/services.sh seed --months 202401-202412   # synthetic months into s3://dpc-elt/raw
#   scripts/services.sh backfill 202401 202412         # one backfill run per month, REST API
#   scripts/services.sh status | down
# State and logs: data/services/ (DPC_SERVICES_DIR). `backfill` also drives docker compose:
#   AIRFLOW_API_URL=http://localhost:8080 AIRFLOW_PASSWORD=admin scripts/services.sh backfill 202401 202412
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/plugins:$PWD"
exec .venv/bin/python -m tests.topology.services "$@"
