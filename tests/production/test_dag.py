"""The real dags/ folder on the production backend (DPC_BACKEND=production): it parses without touching a
connection or a variable, keeps every ASL state's task ids and transitions, and its steps are the
production ones — the S3 sensor, copy_raw as one deferring step operator, dbt on the redshift target
— and it serializes as the scheduler stores it. The maintenance DAGs parse the same way."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from dpc_elt.core import formats, settings, tables

DAGS = Path(__file__).resolve().parents[2] / "dags"
ENVIRONMENT = {
    "DPC_BACKEND": "production",
    "DPC_S3_BUCKET": "dpc-learning-data-dev",
    "DPC_REDSHIFT_WORKGROUP": "dpc-elt",
    "DPC_REDSHIFT_DATABASE": "dpc",
    "DPC_REDSHIFT_IAM_ROLE_ARN": "arn:aws:iam::123456789012:role/dpc-redshift-s3-access",
    "DPC_AWS_CONN_ID": "dpc_aws",
}


def no_lookups(*args, **kwargs):
    raise AssertionError("a connection or variable was looked up while parsing")


def parse(path: Path, env: dict[str, str] = ENVIRONMENT):
    """A DagBag of ``path`` under exactly ``env`` (the roots, the queue and the backend from the
    caller's environment removed first), failing on any connection or variable lookup or network use."""
    from airflow.dag_processing.dagbag import DagBag

    from dpc_elt.orchestration import cosmos_config

    with pytest.MonkeyPatch.context() as patch:
        for name in ("DPC_RAW_ROOT", "DPC_PROCESSED_ROOT", "DPC_MANIFEST_QUEUE_URL", "DPC_BACKEND"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        settings.get_settings.cache_clear()
        cosmos_config._configs.cache_clear()
        try:
            with (
                mock.patch("airflow.sdk.bases.hook.BaseHook.get_connection", side_effect=no_lookups),
                mock.patch("airflow.sdk.Variable.get", side_effect=no_lookups),
                mock.patch("socket.create_connection", side_effect=AssertionError("network while parsing")),
            ):
                return DagBag(dag_folder=str(path))
        finally:
            settings.get_settings.cache_clear()
            cosmos_config._configs.cache_clear()


@pytest.fixture(scope="module")
def dag():
    bag = parse(DAGS / "dpc_elt.py")
    assert bag.import_errors == {}
    return bag.dags["dpc_elt"]


def test_the_production_dag_keeps_the_asl_states_and_edges(dag):
    from tests.dags.test_asl_structure import STATES, asl_edges, snake, step_edges, step_of

    assert {step_of(t.task_id) for t in dag.tasks} == {snake(name) for name in STATES}
    assert step_edges(dag) == asl_edges()


def test_the_manifest_wait_is_the_deferrable_s3_sensor(dag):
    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

    from dpc_elt.backends.redshift.operators import ManifestKeySensor

    sensor = dag.get_task("validate_manifest.wait_for_manifest")
    assert type(sensor) is ManifestKeySensor and isinstance(sensor, S3KeySensor)
    assert sensor.deferrable and sensor.aws_conn_id == "dpc_aws"
    assert sensor.raw_root == "s3://dpc-learning-data-dev/raw"


def test_copy_raw_is_one_deferring_step_operator(dag):
    from dpc_elt.orchestration.operators import BackendStepOperator
    from dpc_elt.orchestration.steps import CopyRawOperator

    copy_raw = dag.get_task("copy_raw")
    assert type(copy_raw) is CopyRawOperator and isinstance(copy_raw, BackendStepOperator)
    assert not [t for t in dag.task_ids if t.startswith("copy_raw.")]  # no per-file-type tasks any more
    assert copy_raw.upstream_task_ids == {"validate_manifest.check_manifest"}
    assert copy_raw.pool == settings.WAREHOUSE_POOL and copy_raw.retries == 4
    for step in ("rollback_stage", "compute_readmit", "export_parquet"):
        assert isinstance(dag.get_task(step), BackendStepOperator)


def test_dbt_runs_on_the_redshift_target(dag):
    dbt_tasks = [t for t in dag.tasks if t.task_id.startswith(("build_stage.", "build_mart.", "dbt_tests"))]
    assert dbt_tasks and all(t.profile_config.target_name == "redshift" for t in dbt_tasks)


def test_the_production_dag_serializes_as_the_scheduler_stores_it(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert set(restored.task_ids) == set(dag.task_ids)
    assert restored.get_task("copy_raw").task_type == "CopyRawOperator"
    assert restored.get_task("validate_manifest.wait_for_manifest").task_type == "ManifestKeySensor"


def test_a_misconfigured_deployment_fails_at_parse_naming_the_setting():
    bad = {**ENVIRONMENT, "DPC_REDSHIFT_IAM_ROLE_ARN": "arn:aws:iam::123:role/x' --"}
    bag = parse(DAGS / "dpc_elt.py", bad)
    (error,) = bag.import_errors.values()
    assert "DPC_REDSHIFT_IAM_ROLE_ARN" in error


def test_the_maintenance_dags_vacuum_every_table_one_at_a_time():
    bag = parse(DAGS)
    assert bag.import_errors == {}
    weekly = bag.dags["dpc_maintenance_weekly"]
    order = [t.task_id for t in weekly.topological_sort()]
    assert order == [*(f"vacuum_{t.task_suffix}" for t in tables.MAINTAINED_TABLES), "check_table_health"]
    assert all(len(weekly.get_task(t).upstream_task_ids) == 1 for t in order[1:])  # a straight line
    monthly = bag.dags["dpc_maintenance_monthly"]
    compression = [t.task_id for t in monthly.topological_sort()]
    assert compression[0] == f"analyze_compression_raw__{formats.Y1.raw_table}"
    assert compression[-1] == "report_compression" and len(compression) == len(tables.MAINTAINED_TABLES) + 1
