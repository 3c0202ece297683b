"""Airflow local settings for local homes only: copied to ``$AIRFLOW_HOME/config/`` by
``scripts/airflow_init.sh`` and by the test session (Airflow imports ``airflow_local_settings`` from
there). It registers the fault drill's cluster policy; MWAA never sees it."""

from dpc_elt.dev.faults import task_policy

__all__ = ["task_policy"]
