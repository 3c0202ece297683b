"""The embedded (DuckDB) maintenance, run for real against a small warehouse file: in-batch
ANALYZE and its log, the weekly CHECKPOINT, the health check and the monthly storage report,
including the task callables that deliver their notices to the outbox."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pendulum
import pytest

from dpc_elt.backends import embedded
from dpc_elt.backends.embedded import DATABASE_TARGET, EmbeddedBackend
from dpc_elt.ops import thresholds
from dpc_elt.ops.health import evaluate_health
from dpc_elt.orchestration import maintenance


def analyze(cfg, layers) -> dict[str, int]:
    with embedded.connect(cfg) as con:
        return embedded.analyze(con, layers)


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
    assert analyze(cfg, ("raw", "stage", "mart")) == {"raw.y1": 3000, "stage.stg_dpc__d": 10}
    con = duckdb.connect(cfg.duckdb_path, read_only=True)
    logged = con.execute("select schema_name, table_name, row_count from ops.analyze_log order by 1, 2").fetchall()
    con.close()
    assert logged == [("raw", "y1", 3000), ("stage", "stg_dpc__d", 10)]


def test_in_batch_analyze_keeps_the_statistics_of_a_table_that_moved_less_than_a_tenth(cfg):
    warehouse(cfg.duckdb_path, y1_rows=3000)
    assert analyze(cfg, ("raw",)) == {"raw.y1": 3000}
    warehouse(cfg.duckdb_path, y1_rows=3299)  # +9.97 %: as Redshift's analyze_threshold_percent (10)
    assert analyze(cfg, ("raw",)) == {}
    warehouse(cfg.duckdb_path, y1_rows=3300)  # +10 % since the last ANALYZE
    assert analyze(cfg, ("raw",)) == {"raw.y1": 3300}
    warehouse(cfg.duckdb_path, y1_rows=2970)  # a tenth fewer (a facility's rows deleted) counts too
    assert analyze(cfg, ("raw",)) == {"raw.y1": 2970}
    con = duckdb.connect(cfg.duckdb_path, read_only=True)
    logged = con.execute("select row_count from ops.analyze_log order by analyzed_at").fetchall()
    con.close()
    assert logged == [(3000,), (3300,), (2970,)]


def test_unknown_layer_is_refused(cfg):
    with pytest.raises(ValueError):
        analyze(cfg, ("raw", "public"))


def test_rows_changed_since_analyze(cfg):
    warehouse(cfg.duckdb_path, y1_rows=3000)
    health = {h.name: h for h in EmbeddedBackend(cfg).health()}
    assert health["raw.y1"].rows_since_analyze == 3000  # never analyzed: every row counts
    analyze(cfg, ("raw",))
    warehouse(cfg.duckdb_path, y1_rows=3500)
    health = {h.name: h for h in EmbeddedBackend(cfg).health()}
    assert health["raw.y1"].rows_since_analyze == 500
    assert health["raw.y1"].skew_pct is None and health["raw.y1"].unsorted_pct is None  # no such thing in DuckDB


def test_weekly_checkpoint_reclaims_the_dropped_table_and_the_check_flags_the_file(cfg):
    warehouse(cfg.duckdb_path, dropped_rows=300_000)
    sizes = EmbeddedBackend(cfg).vacuum(DATABASE_TARGET)
    assert sizes["free_blocks_before"] == 0 and sizes["free_blocks_after"] > 0
    (file_health,) = [h for h in EmbeddedBackend(cfg).health() if h.name.startswith("file ")]
    assert file_health.unused_pct > thresholds.VACUUM_FULL_SHARE_PCT
    (finding,) = evaluate_health([file_health], EmbeddedBackend(cfg))
    assert finding.check == "vacuum_full"


def weekly_callables():
    from airflow.sdk import DAG

    with DAG("t_weekly", schedule=None, start_date=pendulum.datetime(2025, 1, 1)) as dag:
        maintenance.weekly_tasks()
    return {
        task.task_id: getattr(task, "python_callable", None) or (lambda task=task, **context: task.execute(context))
        for task in dag.tasks
    }


def test_weekly_tasks_alert_only_on_findings(cfg, context):
    tasks = weekly_callables()
    warehouse(cfg.duckdb_path)
    analyze(cfg, ("raw", "stage"))
    tasks["vacuum_warehouse"]()
    assert tasks["check_table_health"](**context) == []
    assert not Path(cfg.outbox_path).exists()  # nothing to say, nothing sent

    warehouse(cfg.duckdb_path, dropped_rows=300_000)
    tasks["vacuum_warehouse"]()
    (finding,) = tasks["check_table_health"](**context)
    assert finding.startswith("file dpc.duckdb: vacuum_full")
    (notice,) = notices(cfg)
    assert notice["status"] == "ALERT" and notice["dag_id"] == "dpc_maintenance_weekly"
    assert notice["yyyymm"] == "202611"  # the run's month in JST (Sunday 04:00 JST = Saturday 19:00 UTC)
    assert any("vacuum_full" in note for note in notice["notes"])


def test_monthly_storage_report(cfg, context):
    from airflow.sdk import DAG

    warehouse(cfg.duckdb_path)
    lines = EmbeddedBackend(cfg).analyze_compression(DATABASE_TARGET)
    assert lines == ["every stored column is compressed; DuckDB picks the codec per segment at checkpoint"]

    with DAG("t_monthly", schedule=None, start_date=pendulum.datetime(2025, 1, 1)) as dag:
        maintenance.monthly_tasks()
    assert [t.task_id for t in dag.topological_sort()] == ["analyze_compression_warehouse", "report_compression"]
    pulled = dag.task_dict["analyze_compression_warehouse"].execute(context)

    class TI:
        dag_id, run_id, task_id = context["ti"].dag_id, context["ti"].run_id, "report_compression"

        def xcom_pull(self, task_ids):
            return [pulled]

    notes = dag.task_dict["report_compression"].python_callable(**{**context, "ti": TI()})
    (notice,) = notices(cfg)
    assert notice["status"] == "SUCCESS" and notice["notes"][1:] == notes == lines


def test_uncompressed_columns_are_the_ones_reported(cfg):
    path = cfg.duckdb_path
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(path)
    con.execute("create schema raw; create table raw.y1 (a varchar, b varchar)")
    con.execute("pragma force_compression='uncompressed'")
    con.execute("insert into raw.y1 select range::varchar, 'x' from range(3000)")
    con.execute("checkpoint")
    con.close()
    (line,) = EmbeddedBackend(cfg).analyze_compression(DATABASE_TARGET)
    assert line.startswith("raw.y1: stored uncompressed: ")


def test_failure_callback_names_the_task_and_error_type_only(cfg, context):
    maintenance.notify_failure({**context, "exception": RuntimeError("row 131000123 patient 0000000001")})
    (notice,) = notices(cfg)
    assert notice["status"] == "FAILURE"
    assert notice["failures"][0]["error_type"] == "RuntimeError" and notice["failures"][0]["detail"] == ""
    assert "0000000001" not in json.dumps(notice)
