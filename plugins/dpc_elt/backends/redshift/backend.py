"""The production backend: S3 and Redshift Serverless through the amazon provider, on Amazon MWAA.

Every step that writes submits its Data API work without waiting and returns :class:`Pending` with
the provider's ``RedshiftDataTrigger`` for the statement: the task defers (no worker slot is held)
and :meth:`RedshiftBackend.resume` finishes it from the statement's DescribeStatement once the trigger
fired. Quick reads (counts, the quality report's aggregates, table health, which tables exist) run
synchronously. One configuration: ``DPC_REDSHIFT_WORKGROUP``, ``DPC_REDSHIFT_DATABASE``,
``DPC_AWS_CONN_ID`` (and the S3 roots and role), validated by :func:`data_api.target`.

* ``load_month`` — see :mod:`.load`: staged on S3, then ONE batch (one transaction) for all three raw
  tables; a rejected line is explained from SYS_LOAD_ERROR_DETAIL as a value-free RawFileError.
* ``rollback_stage``, ``compute_readmit`` — one batch each (one transaction), ``:yyyymm`` (and ``:facility_cd``) bound.
* ``export_months`` — see :mod:`.export`: month by month, each UNLOAD deferred.
* ``vacuum``, ``analyze_compression`` — one ExecuteStatement per table (VACUUM cannot run in a
  transaction, and a batch is one), deferred; the maintenance DAGs chain them one at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from dpc_elt.backends.base import Pending
from dpc_elt.backends.redshift import data_api, export, load, s3
from dpc_elt.backends.redshift.data_api import (
    DIALECT,
    FINISHED,
    RUNNING,
    DataApi,
    RedshiftStatementError,
    Target,
    failed_position,
    is_transient_failure,
    joined,
    sql_batch,
    statement_name,
)
from dpc_elt.core import settings, tables
from dpc_elt.core.errors import WarehouseBusyError
from dpc_elt.core.metric_names import ENVIRONMENT_DIMENSION, METRIC_NAMESPACE
from dpc_elt.core.params import validate_yyyymm
from dpc_elt.core.sqlfiles import month_or_facility, readmit_values

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from dpc_elt.core.manifest import ValidatedManifest

log = logging.getLogger(__name__)

ROLLBACK_STAGE = "rollback_stage"
COMPUTE_READMIT = "compute_readmit"
VACUUM = "vacuum"
ANALYZE_COMPRESSION = "analyze_compression"


class RedshiftBackend:
    """S3 (``DPC_S3_BUCKET``, ``DPC_RAW_ROOT``, ``DPC_PROCESSED_ROOT``) and Redshift Serverless
    (``DPC_REDSHIFT_WORKGROUP``, ``DPC_REDSHIFT_DATABASE``) through the Airflow AWS connection
    ``DPC_AWS_CONN_ID``. Constructing it looks nothing up: the settings are validated on first use and
    the hooks reach their connection on their first call."""

    name = settings.PRODUCTION
    dialect = DIALECT
    dbt_target = "redshift"

    def __init__(self, cfg: settings.Settings) -> None:
        self.cfg = cfg

    @cached_property
    def where(self) -> Target:
        return data_api.target(self.cfg)

    @cached_property
    def api(self) -> DataApi:
        return DataApi(self.where)

    def _s3fs(self) -> AbstractFileSystem:
        return s3.filesystem(self.where.aws_conn_id)

    def _pending(self, state: dict[str, Any]) -> Pending:
        return Pending(step=state["step"], trigger=self.api.trigger(state["statement_id"], state["step"]), state=state)

    # --- storage ---------------------------------------------------------------------------------
    def filesystem(self, uri: str) -> tuple[AbstractFileSystem, str]:
        """s3:// through the Airflow AWS connection (credentials, region, endpoint); any other URI
        through fsspec."""
        if uri.startswith("s3://"):
            return s3.filesystem(self.cfg.aws_conn_id or None), uri[len("s3://") :]
        import fsspec

        return fsspec.core.url_to_fs(uri)

    def table_dataset(self, schema: str, table: str) -> tuple[str, str]:
        """OpenLineage's Redshift naming over dbt's endpoint (profiles.yml: DPC_REDSHIFT_HOST, _PORT)."""
        namespace = f"redshift://{self.cfg.redshift_host}:{self.cfg.redshift_port}"
        return namespace, f"{self.where.database}.{schema}.{table}"

    def manifest_sensor(self, **task_kwargs: Any) -> Any:
        from dpc_elt.backends.redshift.operators import ManifestKeySensor

        return ManifestKeySensor(
            raw_root=str(self.where.raw),
            aws_conn_id=self.where.aws_conn_id,
            poke_seconds=self.cfg.manifest_poke_seconds,
            doc_md="Waits (deferred, no worker slot held) for `s3://…/raw/yyyymm=<YYYYMM>/_manifest.json`.",
            **task_kwargs,
        )

    def validate_month(self, yyyymm: str, facility_cd: str | None = None) -> ValidatedManifest:
        """The embedded validation (schema, names, sizes, SHA-256 and records, all streamed) on S3."""
        from dpc_elt.core.manifest import validate_month

        return validate_month(str(self.where.raw), yyyymm, fs=self._s3fs(), facility_cd=facility_cd)

    # --- the steps that write ------------------------------------------------------------------------
    def load_month(self, yyyymm: str, manifest: ValidatedManifest) -> Pending:
        """copy_raw: stage every file on S3, then submit the month's ONE load batch (see :mod:`.load`)."""
        validate_yyyymm(yyyymm)
        return self._pending(load.submit(self.api, self._s3fs(), yyyymm, manifest))

    def rollback_stage(self, yyyymm: str, facility_cd: str | None = None) -> dict[str, int] | Pending:
        """Delete the failed month (or the failed facility's rows of it) from every existing stage table:
        one batch, one transaction."""
        replaced = month_or_facility(yyyymm, facility_cd)
        existing = self.api.existing_tables()
        present = [t for t in settings.STAGE_TABLES if (settings.STAGE_SCHEMA, t) in existing]
        if not present:
            return {}
        batch = joined([sql_batch(replaced.delete_sql, schema=settings.STAGE_SCHEMA, table=t) for t in present])
        if len(batch.statements) != len(present):
            raise RuntimeError(f"{replaced.delete_sql} must hold one statement")
        statement_id = self.api.submit(batch, replaced.values, name=statement_name(ROLLBACK_STAGE, yyyymm))
        state = {"step": ROLLBACK_STAGE, "statement_id": statement_id, "yyyymm": yyyymm, "tables": present}
        return self._pending(state)

    def compute_readmit(self, yyyymm: str, facility_cd: str | None = None) -> Pending:
        """The portable readmission SQL as one batch (create + merge, one transaction, ``:yyyymm`` and
        ``:facility_cd`` bound); its last statement returns the months whose summary rows changed."""
        values = readmit_values(yyyymm, facility_cd)
        batch = sql_batch("compute_readmit/create_fact_case_summary")
        batch += sql_batch("compute_readmit/merge_fact_case_summary")
        statement_id = self.api.submit(batch, values, name=statement_name(COMPUTE_READMIT, yyyymm))
        state = {"step": COMPUTE_READMIT, "statement_id": statement_id, "yyyymm": yyyymm}
        return self._pending(state | {"statements": len(batch.statements)})

    def export_months(self, months: Sequence[str]) -> list[dict[str, Any]] | Pending:
        """Month by month (see :mod:`.export`): this submits the first month's UNLOAD."""
        months = [validate_yyyymm(month) for month in months]
        export.export_table()
        if not months:
            return []
        return self._export_next(months, 0, [])

    def _export_next(self, months: list[str], index: int, written: list[dict[str, Any]]) -> Pending:
        statement_id = export.submit_month(self.api, self._s3fs(), months[index])
        state = {"step": export.STEP, "statement_id": statement_id, "months": months, "index": index}
        return self._pending(state | {"written": written})

    # --- resume ----------------------------------------------------------------------------------------
    def resume(self, pending_state: dict[str, Any], event: dict[str, Any] | None) -> Any:
        """Finish the step of ``pending_state`` once its trigger fired. The statement's DescribeStatement
        is the authority (the event's message is never read: it quotes the database's error text); a
        statement still running (the triggerer gave up early) is waited for again."""
        step = pending_state.get("step")
        finishers = {
            load.STEP: self._finish_load,
            ROLLBACK_STAGE: self._finish_rollback,
            COMPUTE_READMIT: self._finish_readmit,
            export.STEP: self._finish_export_month,
            VACUUM: self._finish_vacuum,
            ANALYZE_COMPRESSION: self._finish_compression,
        }
        if step not in finishers:
            raise ValueError(f"nothing to resume for step {step!r}")
        statement_id = pending_state["statement_id"]
        if event is not None:
            if event.get("statement_id") != statement_id:
                raise RuntimeError(f"{step}: the trigger fired for another statement than {statement_id}")
            log.info("%s: the trigger reported %s %s", step, event.get("status"), event.get("type", ""))
        described = self.api.describe(statement_id)
        if described["Status"] in RUNNING:
            log.warning("%s: statement %s is still %s; waiting again", step, statement_id, described["Status"])
            return self._pending(pending_state)
        return finishers[step](pending_state, described)

    def _failed(self, step: str, described: dict[str, Any]) -> Exception:
        """A statement that did not finish: a lost concurrent transaction is worth a retry, anything
        else fails the step naming the statement's position and status only."""
        position, count, failed = failed_position(described)
        if is_transient_failure(described):
            return WarehouseBusyError(f"{step}: statement {position} of {count} lost to a concurrent transaction")
        status = failed.get("Status") or described["Status"]
        return RedshiftStatementError(f"{step}: statement {position} of {count} {status} ({described.get('Id')})")

    def _finish_load(self, state: dict[str, Any], described: dict[str, Any]) -> dict[str, int]:
        if described["Status"] == FINISHED:
            return load.check_loaded(state, described)
        try:
            rejected = load.explain_failure(self.api, state, described)
        except Exception as lookup:  # the COPY's own failure is what must be reported, not the lookup's
            log.warning("copy_raw: SYS_LOAD_ERROR_DETAIL lookup failed (%s)", type(lookup).__name__)
            rejected = None
        if rejected is not None:
            raise rejected
        raise self._failed(load.STEP, described)

    def _finish_rollback(self, state: dict[str, Any], described: dict[str, Any]) -> dict[str, int]:
        if described["Status"] != FINISHED:
            raise self._failed(ROLLBACK_STAGE, described)
        subs = described.get("SubStatements") or []
        return {table: int(sub.get("ResultRows") or 0) for table, sub in zip(state["tables"], subs, strict=True)}

    def _finish_readmit(self, state: dict[str, Any], described: dict[str, Any]) -> list[str]:
        if described["Status"] != FINISHED:
            raise self._failed(COMPUTE_READMIT, described)
        rows = self.api.records(f"{state['statement_id']}:{state['statements']}")
        return sorted({str(row[0]) for row in rows} | {state["yyyymm"]})

    def _finish_export_month(self, state: dict[str, Any], described: dict[str, Any]) -> list[dict[str, Any]] | Pending:
        if described["Status"] != FINISHED:
            raise self._failed(export.STEP, described)
        months, index = state["months"], state["index"]
        written = [*state["written"], export.finish_month(self.api, self._s3fs(), months[index])]
        if index + 1 < len(months):
            return self._export_next(months, index + 1, written)
        return written

    def _finish_vacuum(self, state: dict[str, Any], described: dict[str, Any]) -> dict[str, Any]:
        if described["Status"] != FINISHED:
            raise self._failed(VACUUM, described)
        seconds = round(int(described.get("Duration") or 0) / 1e9, 1)
        log.info("VACUUM %s: %.1f s (statement %s)", state["target"], seconds, state["statement_id"])
        return {"table": state["target"], "statement_id": state["statement_id"], "seconds": seconds}

    def _finish_compression(self, state: dict[str, Any], described: dict[str, Any]) -> list[str]:
        if described["Status"] != FINISHED:
            raise self._failed(ANALYZE_COMPRESSION, described)
        return compression_lines(state["target"], self.api.rows(state["statement_id"]))

    # --- reads -----------------------------------------------------------------------------------------
    def month_counts(self, yyyymm: str) -> dict[str, int]:
        """Rows of the month in every table the run wrote, for the success notice (one batch of counts)."""
        validate_yyyymm(yyyymm)
        existing = self.api.existing_tables()
        present = [(schema, table) for schema, table in tables.MONTH_TABLES if (schema, table) in existing]
        if not present:
            return {}
        batch = joined([sql_batch("shared/count_month", schema=schema, table=table) for schema, table in present])
        statement_id = self.api.run(batch, {"yyyymm": yyyymm}, name=statement_name("month_counts", yyyymm))
        return {
            f"{schema}.{table}": int(self.api.records(f"{statement_id}:{n}")[0][0])
            for n, (schema, table) in enumerate(present, start=1)
        }

    def quality_report_rows(self, yyyymm: str) -> dict[str, list[list[Any]]]:
        """The quality report's queries (``dpc_elt.core.quality_queries``) as one batch with ``:yyyymm``
        bound; each sub-statement's rows (aggregates only) are read with GetStatementResult of ``<id>:<n>``."""
        from dpc_elt.core.quality_queries import queries

        validate_yyyymm(yyyymm)
        specs = queries()
        batches = [sql_batch(q.name, **q.identifiers) for q in specs]
        if any(len(b.statements) != 1 for b in batches):
            raise RuntimeError("every quality_report SQL file must hold one statement")
        statement_id = self.api.run(joined(batches), {"yyyymm": yyyymm}, name=statement_name("quality_report", yyyymm))
        return {q.key: self.api.records(f"{statement_id}:{n}") for n, q in enumerate(specs, start=1)}

    def health(self) -> list[tables.TableHealth]:
        """SVV_TABLE_INFO of the pipeline's schemas (Serverless has no STV_/STL_ tables): one quick read."""
        values = {"raw_schema": settings.RAW_SCHEMA, "stage_schema": settings.STAGE_SCHEMA}
        values["mart_schema"] = settings.MART_SCHEMA
        statement_id = self.api.run(
            sql_batch("maintenance/select_table_health"), values, single=True, name="dpc_elt.health"
        )
        return health_from_svv_table_info(self.api.rows(statement_id))

    # --- maintenance -------------------------------------------------------------------------------------
    def vacuum_targets(self) -> list[str]:
        """Every table the pipeline writes (the allow-list: no lookup while parsing)."""
        return [table.qualified for table in tables.MAINTAINED_TABLES]

    def _maintained(self, target: str) -> tables.Table | None:
        """The allow-listed table, or None when it does not exist yet (a first run never created it)."""
        table = tables.maintained_table(target)
        return table if (table.schema, table.table) in self.api.existing_tables() else None

    def vacuum(self, target: str) -> dict[str, Any] | Pending:
        """The default VACUUM of one table: one ExecuteStatement (outside any transaction), deferred."""
        table = self._maintained(target)
        if table is None:
            log.info("VACUUM %s: the table does not exist yet", target)
            return {"table": target, "skipped": "table does not exist yet"}
        vacuum = sql_batch("maintenance/vacuum_table", schema=table.schema, table=table.table)
        statement_id = self.api.submit(vacuum, {}, single=True, name=statement_name(VACUUM, table.qualified))
        return self._pending({"step": VACUUM, "statement_id": statement_id, "target": table.qualified})

    def compression_targets(self) -> list[str]:
        return [table.qualified for table in tables.MAINTAINED_TABLES]

    def analyze_compression(self, target: str) -> list[str] | Pending:
        """ANALYZE COMPRESSION of one table (exclusive lock): one ExecuteStatement, deferred; the report
        lines are its recommendations, biggest saving first."""
        table = self._maintained(target)
        if table is None:
            log.info("ANALYZE COMPRESSION %s: the table does not exist yet", target)
            return []
        analyze = sql_batch("maintenance/analyze_compression_table", schema=table.schema, table=table.table)
        name = statement_name(ANALYZE_COMPRESSION, table.qualified)
        statement_id = self.api.submit(analyze, {}, single=True, name=name)
        return self._pending({"step": ANALYZE_COMPRESSION, "statement_id": statement_id, "target": table.qualified})

    def maintenance_action(self, check: str, table: str) -> str:
        quoted = ".".join(f'"{part}"' for part in table.split(".", 1))
        return {
            "vacuum_full": f"VACUUM FULL {quoted} TO 100 PERCENT (alone, outside a transaction)",
            "skew": f"review the distribution key of {table} (dbt config dist=…)",
            "analyze": f"SET analyze_threshold_percent TO 0, then ANALYZE {quoted}",
        }[check]

    def publish_metric(self, name: str, value: float) -> bool:
        """PutMetricData ``Custom/DPC <name> {Environment}`` through the provider's generic AwsBaseHook for
        the ``cloudwatch`` client (the provider has no CloudWatch-metrics hook): credentials and region
        come from the Airflow AWS connection."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        datum = {
            "MetricName": name,
            "Dimensions": [{"Name": ENVIRONMENT_DIMENSION, "Value": self.cfg.environment}],
            "Timestamp": datetime.now(UTC),
            "Value": float(value),
            "Unit": "None",  # ELTExecutionDelay is minutes: CloudWatch has no minute unit, the alarm says so
        }
        hook = AwsBaseHook(aws_conn_id=self.cfg.aws_conn_id or None, client_type="cloudwatch")
        hook.conn.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=[datum])
        log.info("metric %s=%s published to %s [%s]", name, value, METRIC_NAMESPACE, self.cfg.environment)
        return True


# ================================================================================ maintenance helpers


def health_from_svv_table_info(rows: Sequence[dict[str, Any]]) -> list[tables.TableHealth]:
    """Redshift's table health: unsorted share, deleted-not-reclaimed share (tbl_rows counts rows
    marked for deletion, estimated_visible_rows does not), skew_rows as a percentage above an even
    spread, and stats_off (0 current … 100 stale) times rows as the rows changed since the last ANALYZE."""
    health = []
    for row in rows:
        total = int(row["tbl_rows"] or 0)
        visible = row.get("estimated_visible_rows")
        unused = 100.0 * (total - float(visible)) / total if total and visible is not None else None
        skew = (float(row["skew_rows"]) - 1.0) * 100.0 if row.get("skew_rows") is not None else None
        stale = row.get("stats_off")
        health.append(
            tables.TableHealth(
                name=f"{row['schema_name'].strip()}.{row['table_name'].strip()}",
                rows=total,
                unsorted_pct=float(row["unsorted"]) if row.get("unsorted") is not None else None,
                unused_pct=max(0.0, unused) if unused is not None else None,
                skew_pct=max(0.0, skew) if skew is not None else None,
                rows_since_analyze=round(total * float(stale) / 100.0) if stale is not None else None,
            )
        )
    return health


def compression_lines(table: str, rows: Sequence[dict[str, Any]]) -> list[str]:
    """ANALYZE COMPRESSION's rows (Table, Column, Encoding, Est_reduction_pct) as report lines, biggest
    saving first; none when no column would shrink. Tables created with ENCODE AUTO (the Redshift
    default) re-encode by themselves: a line is a hint for a dbt config change, not an action."""
    found = []
    for row in rows:
        reduction = float(row.get("est_reduction_pct") or 0.0)
        if reduction > 0:
            found.append((reduction, f"{table}.{row['column']}: {row['encoding']} (−{reduction:.1f} %)"))
    found.sort(key=lambda item: -item[0])
    lines = [text for _, text in found]
    for line in lines:
        log.info("ANALYZE COMPRESSION recommends %s", line)
    return lines
