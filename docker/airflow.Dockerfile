# The dpc-elt Airflow image for docker-compose.yaml (local development only; production is MWAA).
# Build from the repository root: docker compose build  (or: docker build -f docker/airflow.Dockerfile .)
# The Airflow version must equal the apache-airflow pin in requirements/local.txt
# (tests/compose checks it).
FROM apache/airflow:3.3.2-python3.12

# The pinned local stack: Airflow providers, Cosmos, dbt-core + dbt-duckdb, DuckDB, s3fs.
COPY --chown=airflow:0 requirements/local.txt /opt/airflow/requirements/local.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements/local.txt

# The project, so the image also runs without the bind mounts docker-compose.yaml adds.
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 include /opt/airflow/include

ENV PYTHONPATH=/opt/airflow/plugins \
    DPC_INCLUDE_DIR=/opt/airflow/include \
    DPC_DATA_DIR=/opt/airflow/dpc-data \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    DO_NOT_TRACK=1

# The dbt manifest the DAG renders from (Cosmos LoadMode.DBT_MANIFEST; dbt never runs at parse time).
# airflow-init builds it again for the bind-mounted include/ so both always match the dbt project.
# Parsed with the tasks' warehouse path, --profile and --target (dbt keys its partial-parse state on
# them), so the first dbt task of a group parses partially; dbt parse does not create the file.
RUN cd /opt/airflow/include/dbt \
 && DPC_DUCKDB_PATH=$DPC_DATA_DIR/warehouse/dpc.duckdb dbt parse --quiet --profiles-dir . --profile dpc_elt --target duckdb \
 && test -s target/manifest.json \
 && rm -rf logs

# The data and auth volumes start as these folders: owned by airflow, writable by group 0 (AIRFLOW_UID:0).
RUN mkdir -p /opt/airflow/dpc-data/warehouse /opt/airflow/dpc-data/work /opt/airflow/dpc-data/outbox /opt/airflow/auth \
 && chmod -R g+rwX /opt/airflow/dpc-data /opt/airflow/auth
