#!/usr/bin/env bash
# Prepare the local Airflow metadata database (SQLite under $AIRFLOW_HOME) and the warehouse pool.
set -euo pipefail
mkdir -p "$AIRFLOW_HOME"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
# DuckDB allows one writer per database file: every warehouse task takes this pool's only slot.
airflow pools set dpc_warehouse 1 "One writer for the embedded DuckDB warehouse" >/dev/null
