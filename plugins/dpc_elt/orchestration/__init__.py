"""Airflow wiring: the step operators and factories the DAG files call, retries, Cosmos configuration
and the maintenance DAGs' tasks."""
