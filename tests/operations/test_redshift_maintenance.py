"""The production (Redshift Serverless) maintenance: one Data API ExecuteStatement per table (never a batch:
VACUUM cannot run in a transaction), submitted and waited for deferred, tasks chained one at a time; the
SVV_TABLE_INFO health read with its bound schemas; the ANALYZE COMPRESSION report lines; the manual
actions; and ELTExecutionDelay published to CloudWatch (moto) through the one AWS connection setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pendulum
import pytest
from botocore.stub import ANY

from dpc_elt.backends.base import Pending
from dpc_elt.core import settings, tables
from dpc_elt.ops import health, thresholds
from tests.production.conftest import production_settings, stub_data_api
from tests.production.support import SCHEMAS, expect_existing_tables, failure_event, success_event

CONN_ID = "aws_test"  # tests/operations/conftest.py's moto connection
ALL_TABLES = [(t.schema, t.table) for t in tables.MAINTAINED_TABLES]


@pytest.fixture
def production(monkeypatch, tmp_path):
    """Production settings (the one configuration: workgroup, database, AWS connection) for every
    get_backend() of the test."""
    value = production_settings(aws_conn_id=CONN_ID, outbox_path=str(tmp_path / "outbox.jsonl"))
    monkeypatch.setattr(settings, "get_settings", lambda: value)
    return value


@pytest.fixture
def stub(production, monkeypatch):
    """The Data API of every RedshiftBackend built during the test (botocore Stubber, offline)."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_TEST", '{"conn_type": "aws", "extra": {"region_name": "ap-northeast-1"}}')
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    stubbed = stub_data_api(CONN_ID, monkeypatch)
    yield stubbed
    stubbed.stubber.deactivate()


@pytest.fixture
def backend(production):
    from dpc_elt.backends import get_backend

    return get_backend()


def build(factory):
    from airflow.sdk import DAG

    with DAG(f"t_{factory.__name__}", schedule=None, start_date=pendulum.datetime(2025, 1, 1)) as dag:
        factory()
    return dag


# ----------------------------------------------------------------------------------------- targets


def test_every_maintained_table_is_a_target_without_a_lookup(backend):
    assert backend.vacuum_targets() == backend.compression_targets() == [t.qualified for t in tables.MAINTAINED_TABLES]
    assert backend.vacuum_targets()[0] == "raw.y1" and backend.vacuum_targets()[-1] == "mart.fact_case_summary"


def test_maintained_tables_are_what_the_pipeline_writes():
    from tests.operations.support import REPO

    marts = {p.stem for p in (REPO / "include/dbt/models/marts").glob("*.sql")}
    assert set(tables.MART_MODELS) == marts  # a new mart model joins maintenance here
    assert {t.table for t in tables.STAGE_TABLES} == set(settings.STAGE_TABLES)


def test_the_weekly_dag_vacuums_one_table_at_a_time_then_checks(production):
    from dpc_elt.orchestration import maintenance

    dag = build(maintenance.weekly_tasks)
    order = [task.task_id for task in dag.topological_sort()]
    assert order == [*(f"vacuum_{t.task_suffix}" for t in tables.MAINTAINED_TABLES), "check_table_health"]
    for task_id in order[1:]:  # a straight line: each task waits for exactly the one before it
        assert len(dag.task_dict[task_id].upstream_task_ids) == 1
    assert all(dag.task_dict[t].pool == settings.WAREHOUSE_POOL for t in order)


# ------------------------------------------------------------------------------------------- VACUUM


def test_vacuum_is_one_execute_statement_deferred_never_a_batch(backend, stub):
    from airflow.providers.amazon.aws.triggers.redshift_data import RedshiftDataTrigger

    expect_existing_tables(stub, ALL_TABLES)
    sid = stub.expect_statement('vacuum "raw"."y1"', None, "dpc_elt.vacuum.raw.y1")
    pending = backend.vacuum("raw.y1")
    assert isinstance(pending, Pending) and isinstance(pending.trigger, RedshiftDataTrigger)
    assert pending.trigger.statement_id == sid and pending.trigger.aws_conn_id == CONN_ID
    lookup = ["ExecuteStatement", "DescribeStatement", "GetStatementResult"]  # which tables exist
    assert [s["operation"] for s in stub.sent] == [*lookup, "ExecuteStatement"]
    assert "Sqls" not in stub.sent[-1]  # a list would be one BatchExecuteStatement, i.e. a transaction

    stub.expect_describe(sid, Duration=12_500_000_000)
    assert backend.resume(pending.state, success_event(sid)) == {
        "table": "raw.y1",
        "statement_id": sid,
        "seconds": 12.5,
    }
    stub.assert_done()


def test_a_table_that_does_not_exist_yet_is_not_vacuumed(backend, stub):
    expect_existing_tables(stub, [("raw", "y1")])
    assert backend.vacuum("mart.fact_case_summary") == {"table": "mart.fact_case_summary", "skipped": ANY}
    expect_existing_tables(stub, [("raw", "y1")])
    assert backend.analyze_compression("mart.fact_case_summary") == []
    stub.assert_done()
    assert not [s for s in stub.sent if "vacuum" in s.get("Sql", "") or "compression" in s.get("Sql", "")]


@pytest.mark.parametrize("target", ['raw.y1"; drop table x; --', "pg_catalog.pg_user", "raw"])
def test_only_allow_listed_tables_reach_sql(backend, stub, target):
    with pytest.raises(ValueError, match="not a maintained table"):
        backend.vacuum(target)
    with pytest.raises(ValueError, match="not a maintained table"):
        backend.analyze_compression(target)
    assert stub.sent == []


def test_a_failed_vacuum_fails_the_task_naming_the_table_step_only(backend, stub):
    from dpc_elt.backends.redshift.data_api import RedshiftStatementError

    expect_existing_tables(stub, ALL_TABLES)
    sid = stub.expect_statement(ANY, None, ANY)
    pending = backend.vacuum("stage.stg_dpc__d")
    stub.expect_describe(sid, status="FAILED", Error="ERROR: Query (42) cancelled on user's request")
    with pytest.raises(RedshiftStatementError, match="vacuum: statement 1 of 1 FAILED") as raised:
        backend.resume(pending.state, failure_event(sid))
    assert "cancelled" not in str(raised.value)


def test_the_vacuum_task_defers_and_resumes_through_the_triggers_event(production, stub):
    """VacuumOperator from the weekly DAG, as the triggerer drives it."""
    from airflow.sdk.exceptions import TaskDeferred

    from dpc_elt.orchestration import maintenance

    task = build(maintenance.weekly_tasks).task_dict["vacuum_raw__y1"]
    expect_existing_tables(stub, ALL_TABLES)
    sid = stub.expect_statement('vacuum "raw"."y1"', None, ANY)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute({})
    assert deferred.value.trigger.statement_id == sid and deferred.value.method_name == "resume_step"
    stub.expect_describe(sid)
    result = task.resume_step({}, event=success_event(sid), pending=deferred.value.kwargs["pending"])
    assert result["table"] == "raw.y1"
    stub.assert_done()


# ------------------------------------------------------------------------------ ANALYZE COMPRESSION

COLUMNS = ["Table", "Column", "Encoding", "Est_reduction_pct"]


def test_analyze_compression_is_deferred_and_reports_the_biggest_saving_first(backend, stub):
    expect_existing_tables(stub, ALL_TABLES)
    sid = stub.expect_statement('analyze compression "raw"."y1"', None, "dpc_elt.analyze_compression.raw.y1")
    pending = backend.analyze_compression("raw.y1")
    assert isinstance(pending, Pending) and pending.step == "analyze_compression"
    stub.expect_describe(sid)
    rows = [["y1", "payload_1", "zstd", "12.50"], ["y1", "yyyymm", "raw", "0.00"], ["y1", "payload_9", "lzo", "41.20"]]
    stub.expect_result(sid, rows, columns=COLUMNS)
    assert backend.resume(pending.state, success_event(sid)) == [
        "raw.y1.payload_9: lzo (−41.2 %)",
        "raw.y1.payload_1: zstd (−12.5 %)",
    ]
    stub.assert_done()


def test_a_table_that_would_not_shrink_reports_no_line(backend, stub):
    expect_existing_tables(stub, ALL_TABLES)
    sid = stub.expect_statement(ANY, None, ANY)
    pending = backend.analyze_compression("mart.dim_mdc")
    stub.expect_describe(sid)
    stub.expect_result(sid, [["dim_mdc", "mdc", "raw", "0.00"]], columns=COLUMNS)
    assert backend.resume(pending.state, success_event(sid)) == []


def test_the_monthly_report_reads_every_table_and_is_bounded_for_slack(production, context):
    from dpc_elt.orchestration import maintenance

    dag = build(maintenance.monthly_tasks)
    report = dag.task_dict["report_compression"]
    task_ids = [t.task_id for t in dag.topological_sort()][:-1]
    assert len(task_ids) == len(tables.MAINTAINED_TABLES)
    many = [f"raw.y1.c{i}: zstd (−{i + 1}.0 %)" for i in range(thresholds.COMPRESSION_REPORT_MAX_LINES + 5)]
    context["ti"].pulled[tuple(task_ids)] = [many] + [[] for _ in task_ids[1:]]
    shown = report.python_callable(**context)
    assert len(shown) == thresholds.COMPRESSION_REPORT_MAX_LINES + 1 and shown[-1].startswith("… and 5 more")
    assert "raw.y1.c0: zstd" in Path(production.outbox_path).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- health


def test_health_reads_svv_table_info_with_the_schemas_bound(backend, stub):
    sid = stub.expect_statement(ANY, SCHEMAS, "dpc_elt.health")
    stub.expect_describe(sid)
    columns = ["schema_name", "table_name", "tbl_rows", "estimated_visible_rows", "unsorted", "skew_rows", "stats_off"]
    stub.expect_result(
        sid,
        [
            ["raw     ", "y1      ", 1000, 700, 5.0, 1.1, 0.0],
            ["mart", "fact_case_summary", 200_000_000, 200_000_000, 25.0, 1.5, 60.0],
            ["stage", "stg_dpc__d", 0, None, None, None, None],
        ],
        columns=columns,
    )
    found = backend.health()
    stub.assert_done()
    sql = stub.sent[0]["Sql"].lower()
    assert "from svv_table_info" in sql and "stv_" not in sql and "stl_" not in sql
    assert found == [
        tables.TableHealth(
            "raw.y1", 1000, unsorted_pct=5.0, unused_pct=30.0, skew_pct=pytest.approx(10.0), rows_since_analyze=0
        ),
        tables.TableHealth(
            "mart.fact_case_summary", 200_000_000, 25.0, 0.0, pytest.approx(50.0), rows_since_analyze=120_000_000
        ),
        tables.TableHealth("stage.stg_dpc__d", 0),
    ]
    texts = [f.text() for f in health.evaluate_health(found, backend)]
    assert texts == [
        'raw.y1: vacuum_full 30.0 % ≥ 20 % → VACUUM FULL "raw"."y1" TO 100 PERCENT (alone, outside a transaction)',
        'mart.fact_case_summary: vacuum_full 25.0 % ≥ 20 % → VACUUM FULL "mart"."fact_case_summary" TO 100 PERCENT '
        "(alone, outside a transaction)",
        "mart.fact_case_summary: skew 50.0 % > 20 % → review the distribution key of mart.fact_case_summary "
        "(dbt config dist=…)",
        "mart.fact_case_summary: analyze 120,000,000.0 ≥ 100,000,000 → SET analyze_threshold_percent TO 0, "
        'then ANALYZE "mart"."fact_case_summary"',
    ]


def test_every_check_has_a_redshift_action(backend):
    assert {check: backend.maintenance_action(check, "stage.stg_dpc__d") for check in health.CHECKS} == {
        "vacuum_full": 'VACUUM FULL "stage"."stg_dpc__d" TO 100 PERCENT (alone, outside a transaction)',
        "skew": "review the distribution key of stage.stg_dpc__d (dbt config dist=…)",
        "analyze": 'SET analyze_threshold_percent TO 0, then ANALYZE "stage"."stg_dpc__d"',
    }


# ------------------------------------------------------------------------------------------ metrics


def test_the_metric_goes_to_cloudwatch_through_the_configured_connection(aws, backend):
    import boto3

    assert backend.publish_metric(thresholds.ELT_DELAY_METRIC, 12.5) is True
    cloudwatch = boto3.client("cloudwatch", region_name="ap-northeast-1")
    (metric,) = cloudwatch.list_metrics(Namespace="Custom/DPC")["Metrics"]
    assert metric["MetricName"] == "ELTExecutionDelay"
    assert metric["Dimensions"] == [{"Name": "Environment", "Value": "test"}]
    now = datetime.now(UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace="Custom/DPC",
        MetricName="ELTExecutionDelay",
        Dimensions=metric["Dimensions"],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=60,
        Statistics=["Maximum"],
    )
    assert [point["Maximum"] for point in stats["Datapoints"]] == [12.5]


def test_no_connection_id_is_hard_coded():
    """The pipeline, maintenance and metrics read the one configuration (DPC_AWS_CONN_ID, the workgroup
    and database settings); the old ``dpc_redshift`` templates and ``aws_default`` are gone."""
    package = Path(__file__).resolve().parents[2] / "plugins" / "dpc_elt" / "backends" / "redshift"
    text = "\n".join(p.read_text(encoding="utf-8") for p in package.glob("*.py"))
    assert "aws_default" not in text and "dpc_redshift" not in text and "extra_dejson" not in text


def test_a_failed_analyze_compression_fails_the_task(backend, stub):
    from dpc_elt.backends.redshift.data_api import RedshiftStatementError

    expect_existing_tables(stub, ALL_TABLES)
    sid = stub.expect_statement(ANY, None, ANY)
    pending = backend.analyze_compression("raw.d")
    stub.expect_describe(sid, status="ABORTED")
    with pytest.raises(RedshiftStatementError, match="analyze_compression: statement 1 of 1 ABORTED"):
        backend.resume(pending.state, failure_event(sid, "ABORTED"))
    stub.assert_done()
