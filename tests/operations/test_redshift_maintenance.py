"""The production (Redshift Serverless) maintenance, built with explicit parameters: the exact
statements, one Data API ExecuteStatement per table (never a batch) run one at a time, the health
query's bound parameters and the ANALYZE COMPRESSION report."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest

from dpc_elt import maintenance, operations

TARGET = maintenance.RedshiftTarget(workgroup_name="dpc-learning", database="dpc", aws_conn_id="aws_test")
STATEMENT_ID = "6b5e3f3e-6d6a-4b38-9a55-0c5a43b5a0c1"


def build(builder, *args):
    from airflow.sdk import DAG

    with DAG(f"t_{builder.__name__}", schedule=None, start_date=pendulum.datetime(2025, 1, 1)) as dag:
        builder(TARGET, *args)
    return dag


def test_vacuum_statement_per_table_exactly():
    statements = maintenance.vacuum_statements()
    assert [table for table, _ in statements] == list(operations.MAINTAINED_TABLES)
    assert statements[0][1] == 'vacuum "raw"."y1"'
    assert statements[-1][1] == 'vacuum "mart"."fact_case_summary"'
    assert all(s == f'vacuum "{t.schema}"."{t.table}"' for t, s in statements)


def test_maintained_tables_are_what_the_pipeline_writes():
    from tests.operations.support import REPO

    marts = {p.stem for p in (REPO / "include/dbt/models/marts").glob("*.sql")}
    assert set(operations.MART_MODELS) == marts  # a new mart model joins maintenance here
    assert {t.table for t in operations.STAGE_TABLES} == set(operations.settings.STAGE_TABLES)


def test_weekly_runs_one_vacuum_at_a_time_then_the_health_check():
    dag = build(maintenance.redshift_weekly_tasks)
    order = [task.task_id for task in dag.topological_sort()]
    vacuums = [task_id for task_id in order if task_id.startswith("vacuum_")]
    assert len(vacuums) == len(operations.MAINTAINED_TABLES)
    assert order == [*vacuums, "read_table_health", "check_table_health"]
    for task_id in order[1:]:  # a straight line: each task waits for exactly the one before it
        assert len(dag.task_dict[task_id].upstream_task_ids) == 1
    for task_id in vacuums:
        task = dag.task_dict[task_id]
        assert isinstance(task.sql, str), "a list would be one BatchExecuteStatement, i.e. a transaction"
        assert (task.workgroup_name, task.database, task.aws_conn_id) == ("dpc-learning", "dpc", "aws_test")


def test_health_query_binds_the_schemas():
    dag = build(maintenance.redshift_weekly_tasks)
    read = dag.task_dict["read_table_health"]
    assert "from svv_table_info" in read.sql and "stv_" not in read.sql.lower() and "stl_" not in read.sql.lower()
    assert read.parameters == [
        {"name": "raw_schema", "value": "raw"},
        {"name": "stage_schema", "value": "stage"},
        {"name": "mart_schema", "value": "mart"},
    ]
    assert read.return_sql_result is True


def test_monthly_runs_one_analyze_compression_at_a_time():
    dag = build(maintenance.redshift_monthly_tasks)
    order = [task.task_id for task in dag.topological_sort()]
    assert order[-1] == "report_compression" and len(order) == len(operations.MAINTAINED_TABLES) + 1
    assert dag.task_dict[order[0]].sql == 'analyze compression "raw"."y1"'
    assert all(len(dag.task_dict[t].upstream_task_ids) == 1 for t in order[1:])


def test_deployment_reads_workgroup_and_database_from_the_connection_at_run_time():
    target = maintenance.RedshiftTarget.from_connection()
    assert target.workgroup_name == "{{ conn.dpc_redshift.extra_dejson.workgroup_name }}"
    assert target.database == "{{ conn.dpc_redshift.extra_dejson.database }}"
    assert target.aws_conn_id == operations.REDSHIFT_CONN_ID


def test_vacuum_task_sends_one_execute_statement_not_a_batch(aws):
    """Run the first vacuum task's operator against a stubbed Data API: exactly ExecuteStatement
    with the VACUUM text, then polling; a BatchExecuteStatement would hit an unexpected call."""
    from unittest import mock

    from botocore.stub import Stubber

    dag = build(maintenance.redshift_vacuum_operators, operations.RAW_TABLES[:1])
    operator = dag.task_dict["vacuum_raw__y1"]
    finished = {"Id": STATEMENT_ID, "Status": "FINISHED"}
    with Stubber(operator.hook.conn) as stub:
        stub.add_response(
            "execute_statement",
            {"Id": STATEMENT_ID},
            {
                "Sql": 'vacuum "raw"."y1"',
                "WorkgroupName": "dpc-learning",
                "Database": "dpc",
                "StatementName": "dpc_vacuum_raw__y1",
                "WithEvent": False,
            },
        )
        stub.add_response("describe_statement", finished, {"Id": STATEMENT_ID})  # polling
        stub.add_response("describe_statement", finished, {"Id": STATEMENT_ID})  # sub-statements?
        assert operator.execute({"ti": mock.MagicMock()}) == [STATEMENT_ID]
        stub.assert_no_pending_responses()


def compression_result(rows):
    names = ["Table", "Column", "Encoding", "Est_reduction_pct"]
    return {
        "ColumnMetadata": [{"name": name} for name in names],
        "Records": [[{"stringValue": value} for value in row] for row in rows],
    }


def test_compression_report_biggest_saving_first():
    results = [
        compression_result([("y1", "payload_1", "zstd", "41.20"), ("y1", "yyyymm", "raw", "0.00")]),
        compression_result([("d", "item_name", "lzo", "12.50")]),
    ]
    assert maintenance.compression_notes(results) == ["y1.payload_1: zstd (−41.2 %)", "d.item_name: lzo (−12.5 %)"]
    assert maintenance.compression_notes([compression_result([])]) == ["no column would shrink with another encoding"]


def test_compression_report_is_bounded_for_slack():
    rows = [("y1", f"c{i}", "zstd", f"{i + 1}.0") for i in range(operations.COMPRESSION_REPORT_MAX_LINES + 5)]
    notes = maintenance.compression_notes([compression_result(rows)])
    assert len(notes) == operations.COMPRESSION_REPORT_MAX_LINES + 1 and notes[-1].startswith("… and 5 more")


def test_monthly_report_task_reads_every_compression_task(cfg, context):
    dag = build(maintenance.redshift_monthly_tasks)
    report = dag.task_dict["report_compression"]
    task_ids = [t.task_id for t in dag.topological_sort()][:-1]
    context["ti"].pulled[tuple(task_ids)] = [[compression_result([("y1", "payload_1", "zstd", "41.2")])]] + [
        [] for _ in task_ids[1:]
    ]
    notes = report.python_callable(**context)
    assert notes == ["y1.payload_1: zstd (−41.2 %)"]
    assert "y1.payload_1: zstd" in Path(cfg.outbox_path).read_text(encoding="utf-8")


@pytest.mark.parametrize("layers", [("raw",), ("stage", "mart")])
def test_in_batch_analyze_statements_for_redshift(layers):
    statements = operations.analyze_statements(layers)
    assert [t for t, _ in statements] == list(operations.tables_of(layers))
    assert all(s == f'analyze "{t.schema}"."{t.table}"' for t, s in statements)
