"""The DAG folder parses cleanly, fast, and without touching connections, variables or the network."""

from __future__ import annotations

import time
from pathlib import Path
from unittest import mock

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
PARSE_BUDGET_SECONDS = 5.0


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    def no_lookups(*args, **kwargs):
        raise AssertionError("a connection or variable was looked up while parsing")

    with (
        mock.patch("airflow.sdk.bases.hook.BaseHook.get_connection", side_effect=no_lookups),
        mock.patch("airflow.sdk.Variable.get", side_effect=no_lookups),
    ):
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(DAGS))
        bag.parse_seconds = time.perf_counter() - started
    return bag


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_dag_ids_match_file_names(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


def test_parse_time_within_budget(dagbag):
    assert dagbag.parse_seconds < PARSE_BUDGET_SECONDS, f"parsing took {dagbag.parse_seconds:.2f} s"


def test_schedule_is_daily_0300_tokyo(dagbag):
    dag = dagbag.dags["dpc_elt"]
    timetable = dag.timetable
    assert timetable.expression == "0 3 * * *"
    assert str(timetable.timezone) == "Asia/Tokyo"
    assert dag.max_active_runs == 1
    assert dag.catchup is False


def test_every_dag_documents_triage(dagbag):
    for dag in dagbag.dags.values():
        assert "## Triage" in dag.doc_md and "## Where to look" in dag.doc_md


def test_warehouse_tasks_share_the_single_slot_pool(dagbag):
    dag = dagbag.dags["dpc_elt"]
    opens_warehouse = {
        "copy_raw",
        "build_stage",
        "rollback_stage",
        "build_mart",
        "compute_readmit",
        "dbt_tests",
    }
    opens_warehouse |= {"export_parquet", "notify_success"}
    writers = [t for t in dag.tasks if t.task_id.split(".")[0] in opens_warehouse]
    assert writers and all(t.pool == "dpc_warehouse" for t in writers), [(t.task_id, t.pool) for t in writers]


def test_dag_serializes_as_the_scheduler_stores_it(dagbag):
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.dags["dpc_elt"]
    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert set(restored.task_ids) == set(dag.task_ids)


def test_plugin_manager_does_not_import_the_package_under_bare_names():
    """Airflow imports every .py under plugins/ as a top-level module named by its stem; our package
    would then shadow real ones (dpc_elt/…/settings.py as ``settings``). plugins/.airflowignore stops it."""
    from airflow._shared.module_loading.file_discovery import find_path_from_directory

    plugins = Path(__file__).resolve().parents[2] / "plugins"
    seen = [Path(p) for p in find_path_from_directory(str(plugins), ".airflowignore", "glob")]
    assert not [p for p in seen if p.suffix == ".py"], seen
