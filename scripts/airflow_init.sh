#!/usr/bin/env bash
# Prepare a local Airflow home: the metadata database (SQLite under $AIRFLOW_HOME unless
# AIRFLOW__DATABASE__SQL_ALCHEMY_CONN says otherwise), the warehouse pool, and the development-only
# cluster policy of the fault drill. Cheap when nothing changed: `airflow db migrate` and the pool
# are skipped while the stamp (Airflow version + database) still matches.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p "$AIRFLOW_HOME/config"
# Airflow puts $AIRFLOW_HOME/config on sys.path and imports airflow_local_settings from it. Local homes
# only: MWAA never sees this file, and the fault hook stays out of the DAG files.
cp plugins/dpc_elt/dev/airflow_local_settings.py "$AIRFLOW_HOME/config/airflow_local_settings.py"
stamp="$AIRFLOW_HOME/.dpc-init"
database=${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:$AIRFLOW_HOME/airflow.db}
want="$(python -c 'from importlib.metadata import version; print(version("apache-airflow"))') $database"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && { [[ $database != sqlite:* ]] || [ -f "${database#sqlite:}" ]; }; then
  exit 0
fi
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
# DuckDB allows one writer per database file: every warehouse task takes this pool's only slot.
airflow pools set dpc_warehouse 1 "One writer for the embedded DuckDB warehouse" >/dev/null
echo "$want" > "$stamp"
