"""The embedded (DuckDB) maintenance, run for real against a small warehouse file: in-batch
ANALYZE and its log, the weekly CHECKPOINT, the health check and the monthly storage report,
including the task callables that deliver their notices to the outbox."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pendulum
import pytest

from dpc_elt import maintenance, operations


def warehouse(path: str, *, y1_rows: int = 3000, dropped_rows: int = 0) -> None:
    """raw.y1 and stage.stg_dpc__d with synthetic codes; optionally a big table dropped without a
    checkpoint, so the drop waits in the WAL for the weekly CHECKPOINT."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(path)
    con.execute("create schema if not exists raw; create schema if not exists stage")
    con.execute(
        "create or replace table raw.y1 as select '202504' as yyyymm, lpad((range % 97)::varchar, 9, '0') as "
        f"facility_cd, 'A000010' as item_code from range({y1_rows})"
    )
    con.execute("create or replace table stage.stg_dpc__d as select '202504' as yyyymm, range as n from range(10)")
    if dropped_rows:
        con.execute(
            f"create table raw.scratch as select range as a, md5(range::varchar) as b from range({dropped_rows})"
        )
        con.execute("checkpoint")
        con.execute("pragma disable_checkpoint_on_shutdown")
        con.execute("drop table raw.scratch")
    con.close()


def notices(cfg) -> list[dict]:
    with open(cfg.outbox_path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_in_batch_analyze_runs_on_existing_tables_and_logs_row_counts(cfg):
    warehouse(cfg.duckdb_path)
    assert operations.analyze(cfg, ("raw", "stage", "mart")) == {"raw.y1": 3000, "stage.stg_dpc__d": 10}
    con = duckdb.connect(cfg.duckdb_path, read_only=True)
    logged = con.execute("select schema_name, table_name, row_count from ops.analyze_log order by 1, 2").fetchall()
    con.close()
    assert logged == [("raw", "y1", 3000), ("stage", "stg_dpc__d", 10)]


def test_unknown_layer_is_refused(cfg):
    with pytest.raises(ValueError):
        operations.analyze(cfg, ("raw", "public"))


def test_rows_changed_since_analyze(cfg):
    warehouse(cfg.duckdb_path, y1_rows=3000)
    health = {h.name: h for h in operations.embedded_health(cfg)}
    assert health["raw.y1"].rows_since_analyze == 3000  # never analyzed: every row counts
    operations.analyze(cfg, ("raw",))
    warehouse(cfg.duckdb_path, y1_rows=3500)
    health = {h.name: h for h in operations.embedded_health(cfg)}
    assert health["raw.y1"].rows_since_analyze == 500
    assert health["raw.y1"].skew_pct is None and health["raw.y1"].unsorted_pct is None  # no such thing in DuckDB


def test_weekly_checkpoint_reclaims_the_dropped_table_and_the_check_flags_the_file(cfg):
    warehouse(cfg.duckdb_path, dropped_rows=300_000)
    sizes = maintenance.checkpoint_warehouse(cfg)
    assert sizes["free_blocks_before"] == 0 and sizes["free_blocks_after"] > 0
    (file_health,) = [h for h in operations.embedded_health(cfg) if h.name.startswith("file ")]
    assert file_health.unused_pct > operations.VACUUM_FULL_SHARE_PCT
    (finding,) = operations.evaluate_health([file_health], "duckdb")
    assert finding.check == "vacuum_full"


def weekly_callables():
    from airflow.sdk import DAG

    with DAG("t_weekly", schedule=None, start_date=pendulum.datetime(2025, 1, 1)) as dag:
        maintenance.weekly_tasks()
    return {task.task_id: task.python_callable for task in dag.tasks}


def test_weekly_tasks_alert_only_on_findings(cfg, context):
    tasks = weekly_callables()
    warehouse(cfg.duckdb_path)
    operations.analyze(cfg, ("raw", "stage"))
    tasks["checkpoint_warehouse"]()
    assert tasks["check_table_health"](**context) == []
    assert not Path(cfg.outbox_path).exists()  # nothing to say, nothing sent

    warehouse(cfg.duckdb_path, dropped_rows=300_000)
    tasks["checkpoint_warehouse"]()
    (finding,) = tasks["check_table_health"](**context)
    assert finding.startswith("file dpc.duckdb: vacuum_full")
    (notice,) = notices(cfg)
    assert notice["status"] == "ALERT" and notice["dag_id"] == "dpc_maintenance_weekly"
    assert notice["yyyymm"] == "202611"  # the run's month in JST (Sunday 04:00 JST = Saturday 19:00 UTC)
    assert any("vacuum_full" in note for note in notice["notes"])


def test_monthly_storage_report(cfg, context):
    from airflow.sdk import DAG

    warehouse(cfg.duckdb_path)
    report = maintenance.embedded_storage_report(cfg)
    assert set(report) == {"raw.y1", "stage.stg_dpc__d"}
    assert set(report["raw.y1"]) == {"yyyymm", "facility_cd", "item_code"}
    assert all(sum(codecs.values()) == 3000 for codecs in report["raw.y1"].values())

    with DAG("t_monthly", schedule=None, start_date=pendulum.datetime(2025, 1, 1)) as dag:
        maintenance.monthly_tasks()
    notes = dag.task_dict["report_compression"].python_callable(**context)
    (notice,) = notices(cfg)
    assert notice["status"] == "SUCCESS" and notice["notes"][1:] == notes
    assert notice["counts"] == {"raw.y1": 3, "stage.stg_dpc__d": 2}


def test_uncompressed_columns_are_the_ones_reported():
    report = {"raw.y1": {"a": {"Uncompressed": 10, "RLE": 5}, "b": {"DICT_FSST": 15}}, "raw.d": {"c": {"ALP": 3}}}
    assert maintenance.storage_report_notes(report) == ["raw.y1: stored uncompressed: a"]
    assert maintenance.storage_report_notes({"raw.d": {"c": {"ALP": 3}}})[0].startswith("every stored column")


def test_failure_callback_names_the_task_and_error_type_only(cfg, context):
    maintenance.notify_failure({**context, "exception": RuntimeError("row 131000123 patient 0000000001")})
    (notice,) = notices(cfg)
    assert notice["status"] == "FAILURE"
    assert notice["failures"][0]["error_type"] == "RuntimeError" and notice["failures"][0]["detail"] == ""
    assert "0000000001" not in json.dumps(notice)
