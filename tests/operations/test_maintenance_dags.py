"""The operations DAGs as the scheduler sees them: ids, schedules in Asia/Tokyo (next fire times),
no catch-up, the warehouse pool on embedded tasks, docs, serialization and the metric constants."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pendulum
import pytest

from dpc_elt.core import settings
from dpc_elt.ops import thresholds
from tests.operations.support import REPO, seed_number

DAGS = REPO / "dags"
OPS_DAGS = ("dpc_metrics", "dpc_maintenance_weekly", "dpc_maintenance_monthly")
JST = ZoneInfo("Asia/Tokyo")


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    found = {}
    for dag_id in (*OPS_DAGS, "dpc_elt"):
        bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
        assert bag.import_errors == {}, bag.import_errors
        found.update(bag.dags)
    return found


def next_runs(dag, after: datetime, count: int = 3) -> list[datetime]:
    """The next fire times after ``after``, from the DAG's timetable as the scheduler holds it (the
    serialized DAG's), in JST."""
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.timetables.base import TimeRestriction

    timetable = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).timetable

    runs, earliest, last = [], pendulum.instance(after), None
    for _ in range(count):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=TimeRestriction(earliest=earliest, latest=None, catchup=True)
        )
        runs.append(info.run_after.astimezone(JST))
        last = info.data_interval
    return runs


def test_one_dag_per_file_named_like_it(dags):
    for dag_id in OPS_DAGS:
        assert Path(dags[dag_id].fileloc).stem == dag_id


@pytest.mark.parametrize("dag_id", OPS_DAGS)
def test_no_catch_up_one_run_at_a_time_tokyo_time(dags, dag_id):
    dag = dags[dag_id]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert str(dag.timetable.timezone) == "Asia/Tokyo"
    headings = re.findall(r"^## (.+)$", dag.doc_md, flags=re.MULTILINE)
    assert headings[-2:] == ["Triage", "Where to look"]  # doc_md ends with these two sections


def test_weekly_vacuum_fires_sunday_0400_jst(dags, seed_text):
    hour = seed_number(seed_text, r"週次（日曜 (\d\d):00）")
    wednesday_noon = datetime(2026, 11, 25, 12, 0, tzinfo=JST)
    runs = next_runs(dags["dpc_maintenance_weekly"], wednesday_noon)
    assert runs[0] == datetime(2026, 11, 29, hour, 0, tzinfo=JST)
    assert all(run.weekday() == 6 and (run.hour, run.minute) == (4, 0) for run in runs)
    assert [run.day for run in runs] == [29, 6, 13]


def test_monthly_report_fires_the_15th_0500_jst(dags):
    runs = next_runs(dags["dpc_maintenance_monthly"], datetime(2026, 11, 25, tzinfo=JST))
    assert [(run.month, run.day, run.hour) for run in runs] == [(12, 15, 5), (1, 15, 5), (2, 15, 5)]


def test_metric_every_five_minutes_and_bounded(dags):
    dag = dags["dpc_metrics"]
    runs = next_runs(dag, datetime(2026, 11, 25, 10, 2, tzinfo=JST))
    assert [(run.hour, run.minute) for run in runs] == [(10, 5), (10, 10), (10, 15)]
    assert dag.dagrun_timeout.total_seconds() < 300
    assert [t.task_id for t in dag.tasks] == ["publish_elt_execution_delay"]


def test_the_metric_measures_dpc_elts_real_schedule_and_start(dags):
    elt = dags["dpc_elt"]
    assert elt.timetable.expression == thresholds.ELT_SCHEDULE
    assert str(elt.timetable.timezone) == "Asia/Tokyo"
    assert elt.start_date == thresholds.ELT_START
    assert elt.dag_id == thresholds.ELT_DAG_ID


def test_embedded_maintenance_tasks_take_the_warehouse_pool(dags):
    assert settings.get_settings().backend == settings.EMBEDDED
    weekly, monthly = dags["dpc_maintenance_weekly"], dags["dpc_maintenance_monthly"]
    assert [t.task_id for t in weekly.topological_sort()] == ["vacuum_warehouse", "check_table_health"]
    assert [t.task_id for t in monthly.topological_sort()] == ["analyze_compression_warehouse", "report_compression"]
    for task in [*weekly.tasks, *monthly.tasks]:
        if task.task_id != "report_compression":  # sends what the analysis returned; no warehouse
            assert task.pool == settings.WAREHOUSE_POOL, task.task_id
    assert dags["dpc_metrics"].tasks[0].pool != settings.WAREHOUSE_POOL  # reads a marker, not DuckDB


def test_failures_of_maintenance_are_notified(dags):
    from dpc_elt.orchestration import maintenance

    for dag_id in ("dpc_maintenance_weekly", "dpc_maintenance_monthly"):
        for task in dags[dag_id].tasks:
            assert task.on_failure_callback in (maintenance.notify_failure, [maintenance.notify_failure])


@pytest.mark.parametrize("dag_id", OPS_DAGS)
def test_serializes_as_the_scheduler_stores_it(dags, dag_id):
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dags[dag_id]
    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert set(restored.task_ids) == set(dag.task_ids)
    assert restored.timetable.summary == dag.timetable.expression
