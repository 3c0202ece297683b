"""The real dags/ folder on the production backend: it parses without touching a connection, keeps
every ASL state's task ids and transitions, and uses the production steps. Runs once production is
wired into settings.BACKEND_MODULES and steps.py (the diffs in the issue-4 report)."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from dpc_elt import settings

DAGS = Path(__file__).resolve().parents[2] / "dags"
ENVIRONMENT = {
    "DPC_BACKEND": "production",
    "DPC_S3_BUCKET": "dpc-learning-data-dev",
    "DPC_REDSHIFT_WORKGROUP": "dpc-elt",
    "DPC_REDSHIFT_DATABASE": "dpc",
    "DPC_REDSHIFT_IAM_ROLE_ARN": "arn:aws:iam::123456789012:role/dpc-redshift-s3-access",
    "DPC_AWS_CONN_ID": "aws_default",
}


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    from dpc_elt import cosmos_config

    def no_lookups(*args, **kwargs):
        raise AssertionError("a connection or variable was looked up while parsing")

    with pytest.MonkeyPatch.context() as env:
        for name, value in ENVIRONMENT.items():
            env.setenv(name, value)
        env.delenv("DPC_RAW_ROOT", raising=False)
        env.delenv("DPC_PROCESSED_ROOT", raising=False)
        settings.get_settings.cache_clear()
        cosmos_config._configs.cache_clear()
        try:
            with (
                mock.patch("airflow.sdk.bases.hook.BaseHook.get_connection", side_effect=no_lookups),
                mock.patch("airflow.sdk.Variable.get", side_effect=no_lookups),
            ):
                bag = DagBag(dag_folder=str(DAGS / "dpc_elt.py"))
        finally:
            settings.get_settings.cache_clear()
            cosmos_config._configs.cache_clear()
    assert bag.import_errors == {}
    return bag.dags["dpc_elt"]


def test_the_production_dag_keeps_the_asl_states_and_edges(dag):
    from tests.dags.test_asl_structure import STATES, asl_edges, snake, step_edges, step_of

    assert {step_of(t.task_id) for t in dag.tasks} == {snake(name) for name in STATES}
    assert step_edges(dag) == asl_edges()


def test_the_production_dag_uses_s3_and_the_data_api(dag):
    from airflow.providers.amazon.aws.operators.redshift_data import RedshiftDataOperator
    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

    sensor = dag.get_task("validate_manifest.wait_for_manifest")
    assert isinstance(sensor, S3KeySensor) and sensor.raw_root == "s3://dpc-learning-data-dev/raw"
    loads = [dag.get_task(f"copy_raw.load_{t}") for t in ("y1", "ef_in", "d")]
    assert all(isinstance(op, RedshiftDataOperator) and op.deferrable for op in loads)
    assert dag.get_task("copy_raw.transcode").downstream_task_ids == {"copy_raw.load_y1"}
    dbt_tasks = [t for t in dag.tasks if t.task_id.startswith(("build_stage.", "build_mart."))]
    assert dbt_tasks and all(t.profile_config.target_name == "redshift" for t in dbt_tasks)


def test_the_production_dag_serializes_as_the_scheduler_stores_it(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert set(restored.task_ids) == set(dag.task_ids)
