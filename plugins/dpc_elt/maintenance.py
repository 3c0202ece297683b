"""Task factories of the operations DAGs — ``dpc_metrics``, ``dpc_maintenance_weekly`` and
``dpc_maintenance_monthly`` — and the warehouse work behind them, per backend.

The DAG files call ``elt_delay_task()``, ``weekly_tasks()`` and ``monthly_tasks()``; the backend is
chosen at parse time from ``settings.get_settings().backend``. The Redshift builders take explicit
parameters (a ``RedshiftTarget``) so tests can check every statement without the production
backend being switched on; in a deployment the workgroup and database are templates that Airflow
fills from the ``dpc_redshift`` connection when the task runs, never while parsing.

Embedded tasks that open DuckDB take the ``dpc_warehouse`` pool (one writer per file). Redshift
maintenance statements run one per Data API ``ExecuteStatement`` (VACUUM cannot run in a
transaction, and a batch is one), chained so that only one runs at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dpc_elt import operations, settings
from dpc_elt.operations import Table

log = logging.getLogger(__name__)

HEALTH_TASK_ID = "check_table_health"
COMPRESSION_TASK_ID = "report_compression"


@dataclass(frozen=True)
class RedshiftTarget:
    """Where the Data API runs: Serverless workgroup, database and the AWS connection to use."""

    workgroup_name: str
    database: str
    aws_conn_id: str = operations.REDSHIFT_CONN_ID

    @classmethod
    def from_connection(cls, conn_id: str = operations.REDSHIFT_CONN_ID) -> RedshiftTarget:
        """Templates rendered from the connection's extras at run time (no lookup while parsing)."""
        extras = f"conn.{conn_id}.extra_dejson"
        return cls(
            workgroup_name="{{ " + extras + ".workgroup_name }}",
            database="{{ " + extras + ".database }}",
            aws_conn_id=conn_id,
        )


def _cfg() -> settings.Settings:
    return settings.get_settings()


def _is_embedded() -> bool:
    return _cfg().backend == settings.EMBEDDED


def _month_of(context: Any) -> str:
    """The run's month (JST) for the notice subject; maintenance concerns the warehouse, not a month."""
    from dpc_elt.params import JST

    moment = context.get("logical_date") or getattr(context.get("dag_run"), "run_after", None) or datetime.now(UTC)
    return moment.astimezone(JST).strftime("%Y%m")


def _deliver(context: Any, status: str, notes: list[str], counts: dict[str, int] | None = None) -> str:
    from dpc_elt.notify import Message, deliver

    ti = context["ti"]
    cfg = _cfg()
    message = Message(
        status=status, dag_id=ti.dag_id, run_id=ti.run_id, yyyymm=_month_of(context), environment=cfg.environment
    )
    message.notes = notes
    message.counts = counts or {}
    return deliver(message, context, cfg)


def notify_failure(context: Any) -> None:
    """``on_failure_callback`` of the maintenance and metric tasks: the task and its error type only."""
    from dpc_elt.notify import describe_failure

    ti = context["ti"]
    failure = describe_failure(ti.task_id, context.get("exception"), getattr(ti, "log_url", None))
    try:
        from dpc_elt.notify import Message, deliver

        cfg = _cfg()
        message = Message("FAILURE", ti.dag_id, ti.run_id, _month_of(context), cfg.environment, failures=[failure])
        deliver(message, context, cfg)
    except Exception:  # a callback must not hide the task's own failure
        log.exception("could not deliver the failure notice of %s", ti.task_id)


# === dpc_metrics ======================================================================================


def elt_delay_task(*, publish: bool | None = None, aws_conn_id: str | None = operations.AWS_CONN_ID):
    """``publish_elt_execution_delay``: compute ELTExecutionDelay; publish it to CloudWatch on the
    production backend, log it on the embedded default. Reads one small object, no warehouse."""
    from airflow.sdk import task

    if publish is None:
        publish = not _is_embedded()

    @task(task_id="publish_elt_execution_delay", retries=0)
    def publish_elt_execution_delay() -> float:
        return operations.measure_elt_delay(_cfg(), publish=publish, aws_conn_id=aws_conn_id)

    return publish_elt_execution_delay()


# === Embedded (DuckDB) maintenance ====================================================================


def checkpoint_warehouse(cfg: settings.Settings) -> dict[str, int]:
    """The weekly DuckDB VACUUM equivalent; returns free blocks before and after."""
    from dpc_elt import embedded

    with embedded.connect(cfg) as con:
        before = embedded.run_file(con, "maintenance/select_database_size", {})[0]
        embedded.run_file(con, "maintenance/checkpoint_warehouse", {})
        after = embedded.run_file(con, "maintenance/select_database_size", {})[0]
    sizes = {"total_blocks_before": before[0], "free_blocks_before": before[1]}
    sizes |= {"total_blocks_after": after[0], "free_blocks_after": after[1]}
    log.info("CHECKPOINT %s: %s", cfg.duckdb_path, sizes)
    return sizes


def embedded_storage_report(cfg: settings.Settings) -> dict[str, dict[str, dict[str, int]]]:
    """The monthly DuckDB ANALYZE COMPRESSION equivalent: rows per compression per column."""
    from dpc_elt import embedded

    report: dict[str, dict[str, dict[str, int]]] = {}
    with embedded.connect(cfg) as con:
        for table in operations.MAINTAINED_TABLES:
            if not operations._exists(con, table):
                continue
            rows = embedded.run_file(con, "maintenance/select_storage_info", {"qualified_name": table.qualified})
            columns: dict[str, dict[str, int]] = {}
            for column, compression, _segments, row_count in rows:
                columns.setdefault(column, {})[compression] = int(row_count)
            report[table.qualified] = columns
    return report


def storage_report_notes(report: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    """Columns DuckDB keeps uncompressed — the only case worth a look (it picks codecs itself)."""
    notes = []
    for table, columns in report.items():
        plain = sorted(column for column, codecs in columns.items() if codecs.get("Uncompressed"))
        if plain:
            notes.append(f"{table}: stored uncompressed: {', '.join(plain)}")
    return notes or ["every stored column is compressed; DuckDB picks the codec per segment at checkpoint"]


def _embedded_weekly():
    from airflow.sdk import chain, task

    @task(task_id="checkpoint_warehouse", pool=settings.WAREHOUSE_POOL)
    def checkpoint_warehouse_task() -> dict[str, int]:
        """VACUUM equivalent: CHECKPOINT the warehouse file (outside any transaction)."""
        return checkpoint_warehouse(_cfg())

    @task(task_id=HEALTH_TASK_ID, pool=settings.WAREHOUSE_POOL)
    def check_table_health(**context: Any) -> list[str]:
        """Unused share of the file, rows changed since ANALYZE; alert on the seed's thresholds."""
        return alert_on_findings(operations.embedded_health(_cfg()), "duckdb", context)

    tasks = [checkpoint_warehouse_task(), check_table_health()]
    chain(*tasks)
    return [t.operator for t in tasks]


def _embedded_monthly():
    from airflow.sdk import task

    @task(task_id=COMPRESSION_TASK_ID, pool=settings.WAREHOUSE_POOL)
    def report_compression(**context: Any) -> list[str]:
        """Compression per column (pragma_storage_info); reported to Slack/outbox and the log."""
        report = embedded_storage_report(_cfg())
        for table, columns in report.items():
            log.info("storage of %s: %s", table, columns)
        notes = storage_report_notes(report)
        _deliver(context, "SUCCESS", ["*Monthly compression report*", *notes], {t: len(c) for t, c in report.items()})
        return notes

    return [report_compression().operator]


def alert_on_findings(health: Sequence[operations.TableHealth], backend: str, context: Any) -> list[str]:
    """Log every table's numbers; deliver an ALERT listing the findings, if any."""
    for item in health:
        log.info("health %s", item)
    findings = operations.evaluate_health(health, backend)
    texts = [finding.text() for finding in findings]
    if texts:
        log.warning("manual maintenance recommended:\n%s", "\n".join(texts))
        _deliver(context, "ALERT", ["*Manual maintenance recommended*", *texts])
    else:
        log.info("all %d tables within the thresholds", len(health))
    return texts


# === Redshift maintenance (production) ================================================================


def vacuum_statements(tables: Sequence[Table] = operations.MAINTAINED_TABLES) -> list[tuple[Table, str]]:
    from dpc_elt import sqlfiles

    return [
        (table, statement)
        for table in tables
        for statement in sqlfiles.statements(
            "maintenance/vacuum_table", "redshift", schema=table.schema, table=table.table
        )
    ]


def analyze_compression_statements(tables: Sequence[Table] = operations.MAINTAINED_TABLES) -> list[tuple[Table, str]]:
    from dpc_elt import sqlfiles

    return [
        (table, statement)
        for table in tables
        for statement in sqlfiles.statements(
            "maintenance/analyze_compression_table", "redshift", schema=table.schema, table=table.table
        )
    ]


def table_health_query() -> tuple[str, list[dict[str, str]]]:
    """The SVV_TABLE_INFO query and its Data API parameters."""
    from dpc_elt import sqlfiles

    (statement,) = sqlfiles.statements("maintenance/select_table_health", "redshift")
    schemas = {"raw_schema": settings.RAW_SCHEMA, "stage_schema": settings.STAGE_SCHEMA}
    schemas["mart_schema"] = settings.MART_SCHEMA
    return statement, [{"name": name, "value": value} for name, value in schemas.items()]


def _redshift_operator(task_id: str, sql: str, target: RedshiftTarget, **kwargs: Any):
    from airflow.providers.amazon.aws.operators.redshift_data import RedshiftDataOperator

    return RedshiftDataOperator(
        task_id=task_id,
        sql=sql,  # one string: one ExecuteStatement, outside any batch transaction
        workgroup_name=target.workgroup_name,
        database=target.database,
        aws_conn_id=target.aws_conn_id,
        statement_name=f"dpc_{task_id}",
        wait_for_completion=True,
        poll_interval=15,
        **kwargs,
    )


def redshift_vacuum_operators(target: RedshiftTarget, tables: Sequence[Table] = operations.MAINTAINED_TABLES) -> list:
    """One ``vacuum_<schema>__<table>`` task per table, chained: VACUUM one table at a time."""
    from airflow.sdk import chain

    operators = [
        _redshift_operator(f"vacuum_{table.task_suffix}", statement, target, doc_md=f"`{statement}`")
        for table, statement in vacuum_statements(tables)
    ]
    chain(*operators)
    return operators


def redshift_compression_operators(
    target: RedshiftTarget, tables: Sequence[Table] = operations.MAINTAINED_TABLES
) -> list:
    """One ``analyze_compression_<schema>__<table>`` task per table, chained (exclusive locks)."""
    from airflow.sdk import chain

    operators = [
        _redshift_operator(f"analyze_compression_{table.task_suffix}", statement, target, return_sql_result=True)
        for table, statement in analyze_compression_statements(tables)
    ]
    chain(*operators)
    return operators


def compression_notes(results: Sequence[dict[str, Any]]) -> list[str]:
    """ANALYZE COMPRESSION results (GetStatementResult responses) as report lines, biggest saving
    first. Tables created with ENCODE AUTO (the Redshift default) re-encode by themselves."""
    recommendations = []
    for result in results:
        for row in operations.data_api_rows(result):
            reduction = float(row.get("est_reduction_pct") or 0.0)
            if reduction > 0:
                recommendations.append(
                    (reduction, f"{row['table']}.{row['column']}: {row['encoding']} (−{reduction:.1f} %)")
                )
    recommendations.sort(key=lambda item: -item[0])
    lines = [text for _, text in recommendations]
    for line in lines:
        log.info("ANALYZE COMPRESSION recommends %s", line)
    shown = lines[: operations.COMPRESSION_REPORT_MAX_LINES]
    if len(lines) > len(shown):
        shown.append(f"… and {len(lines) - len(shown)} more in the task log")
    return shown or ["no column would shrink with another encoding"]


def redshift_weekly_tasks(target: RedshiftTarget, tables: Sequence[Table] = operations.MAINTAINED_TABLES) -> list:
    """vacuum_* (one at a time) → read_table_health (SVV_TABLE_INFO) → check_table_health."""
    from airflow.sdk import chain, task

    vacuums = redshift_vacuum_operators(target, tables)
    sql, parameters = table_health_query()
    read = _redshift_operator("read_table_health", sql, target, parameters=parameters, return_sql_result=True)

    @task(task_id=HEALTH_TASK_ID)
    def check_table_health(results: list[dict[str, Any]], **context: Any) -> list[str]:
        rows = [row for result in results for row in operations.data_api_rows(result)]
        return alert_on_findings(operations.health_from_svv_table_info(rows), "redshift", context)

    check = check_table_health(read.output)
    chain(vacuums[-1], read)
    return [*vacuums, read, check.operator]


def redshift_monthly_tasks(target: RedshiftTarget, tables: Sequence[Table] = operations.MAINTAINED_TABLES) -> list:
    """analyze_compression_* (one at a time) → report_compression."""
    from airflow.sdk import task

    operators = redshift_compression_operators(target, tables)
    task_ids = [operator.task_id for operator in operators]

    @task(task_id=COMPRESSION_TASK_ID)
    def report_compression(**context: Any) -> list[str]:
        results = [result for pulled in context["ti"].xcom_pull(task_ids=task_ids) or [] for result in pulled or []]
        notes = compression_notes(results)
        _deliver(context, "SUCCESS", ["*Monthly ANALYZE COMPRESSION report*", *notes])
        return notes

    report = report_compression()
    operators[-1] >> report
    return [*operators, report.operator]


# === What the DAG files call ==========================================================================


def weekly_tasks():
    """Weekly VACUUM and the manual-maintenance checks, for the configured backend."""
    if _is_embedded():
        return _embedded_weekly()
    return redshift_weekly_tasks(RedshiftTarget.from_connection())


def monthly_tasks():
    """Monthly ANALYZE COMPRESSION report, for the configured backend."""
    if _is_embedded():
        return _embedded_monthly()
    return redshift_monthly_tasks(RedshiftTarget.from_connection())
