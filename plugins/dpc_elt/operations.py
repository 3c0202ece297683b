"""Operations of the pipeline (the second seed): every threshold in one place, the ELTExecutionDelay
metric, the CopyErrorCount log line, in-batch ANALYZE and the maintenance checks.

Importable without a running Airflow: the provider hooks, duckdb and fsspec are imported inside the
functions that need them. Nothing here logs or returns a patient value: table names, counts, file
names, line numbers and minutes only.

``ELTExecutionDelay`` (decisions.md, "Operations seed"): how many minutes ``dpc_elt`` is overdue.
A run *ends well* when it loaded its month (``notify_success``) or when a scheduled run found no
delivery within its wait (the sensor's skip) — the two ways Airflow itself ends a run ``success``.
Each such end writes a small marker object, ``<processed_root>/_ops/dpc_elt_last_run.json``. The
next good end is due at the first ``dpc_elt`` slot (03:00 JST) after the last one plus the run window
(the manifest wait, 360 min); the metric is ``max(0, now − due)``. Reading one small object needs
neither the Airflow metadata database nor the warehouse (querying Redshift Serverless every 5
minutes would keep it from ever pausing).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from dpc_elt import formats, settings
from dpc_elt.params import JST, MANIFEST_WAIT_DEFAULT_MINUTES

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

# --- The numbers of the operations design, in one place -------------------------------------------
# CloudWatch (infra/terraform/modules/operations uses the same numbers; tests compare both with the seed).
METRIC_NAMESPACE = "Custom/DPC"
ELT_DELAY_METRIC = "ELTExecutionDelay"
COPY_ERROR_METRIC = "CopyErrorCount"
ENVIRONMENT_DIMENSION = "Environment"
ELT_DELAY_ALARM_MINUTES = 90
# Manual-maintenance conditions, checked weekly by dpc_maintenance_weekly and alerted. As the seed
# words them: "20 % 以上" and "1 億件以上" include the number itself, the skew "> 20 %" does not.
VACUUM_FULL_SHARE_PCT = 20.0  # unsorted or unused (deleted, not reclaimed) share of a table, at least
TABLE_SKEW_PCT = 20.0  # rows on the fullest slice above an even spread, more than
ANALYZE_AFTER_ROWS = 100_000_000  # rows changed since the last ANALYZE, at least
# ANALYZE COMPRESSION recommendations shown in the monthly Slack report (all of them go to the log).
COMPRESSION_REPORT_MAX_LINES = 20

# --- What the metric measures -----------------------------------------------------------------------
ELT_DAG_ID = "dpc_elt"
ELT_SCHEDULE = "0 3 * * *"  # dpc_elt's CronTriggerTimetable, Asia/Tokyo (a test compares it with the DAG)
ELT_START = datetime(2025, 1, 1, tzinfo=JST)  # dpc_elt's start_date: "never ended well" counts from here
ELT_RUN_WINDOW = timedelta(minutes=MANIFEST_WAIT_DEFAULT_MINUTES)
RUN_MARKER_NAME = "_ops/dpc_elt_last_run.json"
OUTCOMES = ("loaded", "not_delivered")

# --- Connections (ids only; secrets live in the Connections) ----------------------------------------
AWS_CONN_ID = "aws_default"  # CloudWatch PutMetricData
REDSHIFT_CONN_ID = "dpc_redshift"  # type aws; extras: workgroup_name, database (and region_name)

# --- The CopyErrorCount log line ---------------------------------------------------------------------
COPY_ERROR_EVENT = "DPC_COPY_ERROR"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Table:
    """One warehouse table that maintenance touches; names come only from the allow-lists below."""

    schema: str
    table: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def task_suffix(self) -> str:
        return f"{self.schema}__{self.table}"


# The tables the pipeline writes (intermediate models are views; ref seeds are tiny and static).
MART_MODELS = ("fct_cases", "dim_facility", "dim_icd10", "dim_mdc")
RAW_TABLES = tuple(Table(settings.RAW_SCHEMA, layout.raw_table) for layout in formats.LAYOUTS.values())
STAGE_TABLES = tuple(Table(settings.STAGE_SCHEMA, table) for table in settings.STAGE_TABLES)
MART_TABLES = tuple(Table(settings.MART_SCHEMA, table) for table in (*MART_MODELS, settings.SUMMARY_TABLE))
LAYERS: dict[str, tuple[Table, ...]] = {"raw": RAW_TABLES, "stage": STAGE_TABLES, "mart": MART_TABLES}
MAINTAINED_TABLES = RAW_TABLES + STAGE_TABLES + MART_TABLES


def tables_of(layers: Iterable[str]) -> tuple[Table, ...]:
    unknown = set(layers) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown layers {sorted(unknown)}; use {sorted(LAYERS)}")
    return tuple(table for layer in LAYERS if layer in set(layers) for table in LAYERS[layer])


# === ELTExecutionDelay ================================================================================


@dataclass(frozen=True)
class RunEnd:
    """A dpc_elt run that ended well: its month loaded, or (scheduled) nothing delivered in time."""

    dag_id: str
    run_id: str
    outcome: str
    ended_at: datetime
    yyyymm: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ended_at": self.ended_at.astimezone(UTC).isoformat(timespec="seconds")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunEnd:
        ended_at = datetime.fromisoformat(data["ended_at"])
        if ended_at.tzinfo is None:
            raise ValueError("ended_at has no time zone")
        if data["outcome"] not in OUTCOMES:
            raise ValueError(f"unknown outcome {data['outcome']!r}")
        return cls(data["dag_id"], data["run_id"], data["outcome"], ended_at, data.get("yyyymm"))


def run_marker_uri(cfg: settings.Settings) -> str:
    """Beside the exports, in a ``_``-prefixed folder that Parquet readers skip."""
    return f"{cfg.processed_root.rstrip('/')}/{RUN_MARKER_NAME}"


def next_slot_after(moment: datetime, schedule: str = ELT_SCHEDULE) -> datetime:
    """The first fire time of ``schedule`` (Asia/Tokyo) strictly after ``moment``."""
    from croniter import croniter

    return croniter(schedule, moment.astimezone(JST)).get_next(datetime)


def elt_execution_delay_minutes(
    now: datetime,
    last_good_end: datetime | None,
    *,
    schedule: str = ELT_SCHEDULE,
    run_window: timedelta = ELT_RUN_WINDOW,
    start: datetime = ELT_START,
) -> float:
    """Minutes past the time by which the next run should have ended well; 0 while not overdue.

    The next good end is due at the first slot after the last one (or after ``start`` when no run
    ever ended well) plus ``run_window``, the longest a healthy run waits for its delivery.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    due = next_slot_after(last_good_end or start, schedule) + run_window
    return round(max(0.0, (now - due).total_seconds() / 60.0), 1)


def record_run_end(
    context: Any,
    outcome: str,
    *,
    yyyymm: str | None = None,
    cfg: settings.Settings | None = None,
    now: datetime | None = None,
) -> RunEnd:
    """Write the marker of a run that ended well. Called by notify_success (``loaded``) and by the
    manifest sensor of a scheduled run whose delivery did not come (``not_delivered``)."""
    import fsspec

    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    cfg = cfg or settings.get_settings()
    ti = context["ti"]
    end = RunEnd(ti.dag_id, ti.run_id, outcome, now or datetime.now(UTC), yyyymm)
    fs, path = fsspec.core.url_to_fs(run_marker_uri(cfg))
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    partial = f"{path}.partial"
    with fs.open(partial, "w") as handle:
        json.dump(end.to_dict(), handle)
    fs.mv(partial, path)  # a reader sees the old marker or the new one, never half of one
    log.info("recorded the end of %s %s: %s at %s", end.dag_id, end.run_id, outcome, end.to_dict()["ended_at"])
    return end


def read_last_run_end(cfg: settings.Settings) -> RunEnd | None:
    """The newest good end, or None when no run ever ended well (or the marker is unreadable: then
    the delay counts from ELT_START and alarms, which is what an unreadable marker deserves)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(run_marker_uri(cfg))
    if not fs.exists(path):
        return None
    try:
        with fs.open(path, "r") as handle:
            return RunEnd.from_dict(json.load(handle))
    except (ValueError, KeyError, TypeError) as error:
        log.warning("run marker %s is unreadable (%s): treating it as missing", path, type(error).__name__)
        return None


def publish_elt_delay(
    minutes: float,
    *,
    environment: str,
    aws_conn_id: str | None = AWS_CONN_ID,
    region_name: str | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """PutMetricData ``Custom/DPC ELTExecutionDelay {Environment}`` through the amazon provider.

    The provider has no CloudWatch-metrics hook, so this is its generic ``AwsBaseHook`` for the
    ``cloudwatch`` client: credentials and region come from the Airflow connection.
    """
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    datum = {
        "MetricName": ELT_DELAY_METRIC,
        "Dimensions": [{"Name": ENVIRONMENT_DIMENSION, "Value": environment}],
        "Timestamp": timestamp or datetime.now(UTC),
        "Value": float(minutes),
        "Unit": "None",  # minutes: CloudWatch has no minute unit, the name and the alarm say so
    }
    hook = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="cloudwatch", region_name=region_name)
    hook.conn.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=[datum])
    return datum


def measure_elt_delay(
    cfg: settings.Settings,
    *,
    now: datetime | None = None,
    publish: bool = False,
    aws_conn_id: str | None = AWS_CONN_ID,
    region_name: str | None = None,
) -> float:
    """The 5-minute task: compute the delay, log it, and publish it to CloudWatch if asked."""
    now = now or datetime.now(UTC)
    last = read_last_run_end(cfg)
    minutes = elt_execution_delay_minutes(now, last.ended_at if last else None)
    since = f"{last.outcome} {last.run_id} at {last.to_dict()['ended_at']}" if last else "never"
    log.info("%s=%.1f min [%s] (last good end: %s)", ELT_DELAY_METRIC, minutes, cfg.environment, since)
    if minutes > ELT_DELAY_ALARM_MINUTES:
        log.warning("%s above %d min: see docs/runbook.md, 'Delayed run'", ELT_DELAY_METRIC, ELT_DELAY_ALARM_MINUTES)
    if publish:
        publish_elt_delay(minutes, environment=cfg.environment, aws_conn_id=aws_conn_id, region_name=region_name)
    return minutes


# === CopyErrorCount ===================================================================================


def copy_error_line(file: str, line: int | None = None, count: int = 1) -> str:
    """The fixed log line that the CloudWatch metric filter counts: a file name and a line number,
    never a field value. Anything but ``[A-Za-z0-9._-]`` in the name becomes ``_``."""
    if count < 1:
        raise ValueError("count must be at least 1")
    name = _UNSAFE_NAME.sub("_", PurePosixPath(str(file)).name)[:128] or "unknown"
    where = str(int(line)) if line is not None else "-"
    return f"{COPY_ERROR_EVENT} count={int(count)} file={name} line={where}"


def report_copy_error(file: str, line: int | None = None, *, count: int = 1) -> str:
    """Log one COPY error for the ``CopyErrorCount`` metric filter; returns the line."""
    text = copy_error_line(file, line, count)
    log.error(text)
    return text


@contextmanager
def copy_errors_reported() -> Iterator[None]:
    """Wrap copy_raw's load: a rejected data line is reported for CopyErrorCount, then re-raised."""
    from dpc_elt.errors import RawFileError

    try:
        yield
    except RawFileError as error:
        report_copy_error(error.file, error.line)
        raise


# === In-batch ANALYZE =================================================================================


def analyze_statements(layers: Sequence[str], dialect: str = "redshift") -> list[tuple[Table, str]]:
    """``ANALYZE`` per table of ``layers``, for a backend that runs statements itself (Redshift:
    one ExecuteStatement each, so one slow table does not hold the others' locks)."""
    from dpc_elt import sqlfiles

    return [
        (table, statement)
        for table in tables_of(layers)
        for statement in sqlfiles.statements(
            "maintenance/analyze_table", dialect, schema=table.schema, table=table.table
        )
    ]


def _exists(con: duckdb.DuckDBPyConnection, table: Table) -> bool:
    from dpc_elt import embedded

    return embedded.run_file(con, "shared/table_exists", {"schema": table.schema, "table": table.table})[0][0] > 0


def analyze(cfg: settings.Settings, layers: Sequence[str] = ("raw",)) -> dict[str, int]:
    """Embedded in-batch ANALYZE: refresh the statistics of every existing table of ``layers`` and
    note its row count in ``ops.analyze_log`` (the weekly check compares against it)."""
    from dpc_elt import embedded

    analyzed: dict[str, int] = {}
    with embedded.connect(cfg) as con:
        embedded.run_file(con, "maintenance/create_analyze_log", {})
        for table in tables_of(layers):
            if not _exists(con, table):
                continue
            ident = {"schema": table.schema, "table": table.table}
            embedded.run_file(con, "maintenance/analyze_table", {}, **ident)
            rows = embedded.run_file(con, "maintenance/count_rows", {}, **ident)[0][0]
            values = {"schema_name": table.schema, "table_name": table.table, "row_count": rows}
            embedded.run_file(con, "maintenance/insert_analyze_log", values)
            analyzed[table.qualified] = rows
    log.info("ANALYZE %s: %s", ",".join(layers), analyzed)
    return analyzed


# === Manual-maintenance checks ========================================================================


@dataclass(frozen=True)
class TableHealth:
    """What the checks look at, per table (None: the backend has no such notion)."""

    name: str
    rows: int
    unsorted_pct: float | None = None
    unused_pct: float | None = None
    skew_pct: float | None = None
    rows_since_analyze: int | None = None


@dataclass(frozen=True)
class Finding:
    check: str  # vacuum_full | skew | analyze
    name: str
    value: float
    threshold: float
    action: str

    def text(self) -> str:
        unit = "" if self.check == "analyze" else " %"
        compare = ">" if self.check == "skew" else "≥"
        return (
            f"{self.name}: {self.check} {self.value:,.1f}{unit} {compare} {self.threshold:,.0f}{unit} → {self.action}"
        )


def _actions(backend: str, name: str) -> dict[str, str]:
    if backend == "redshift":
        quoted = ".".join(f'"{part}"' for part in name.split(".", 1))
        return {
            "vacuum_full": f"VACUUM FULL {quoted} TO 100 PERCENT (alone, outside a transaction)",
            "skew": f"review the distribution key of {name} (dbt config dist=…)",
            "analyze": f"SET analyze_threshold_percent TO 0, then ANALYZE {quoted}",
        }
    return {
        "vacuum_full": "compact the warehouse file (docs/runbook.md, 'Storage pressure')",
        "skew": "not applicable on one DuckDB file",
        "analyze": f"ANALYZE {name}",
    }


def evaluate_health(health: Iterable[TableHealth], backend: str) -> list[Finding]:
    """The seed's manual-trigger conditions: 20 % or more unsorted/unused, more than 20 % skew,
    100 million or more rows changed since the last ANALYZE."""
    findings = []
    for item in health:
        actions = _actions(backend, item.name)
        shares = [share for share in (item.unsorted_pct, item.unused_pct) if share is not None]
        if shares and max(shares) >= VACUUM_FULL_SHARE_PCT:
            findings.append(
                Finding("vacuum_full", item.name, max(shares), VACUUM_FULL_SHARE_PCT, actions["vacuum_full"])
            )
        if item.skew_pct is not None and item.skew_pct > TABLE_SKEW_PCT:
            findings.append(Finding("skew", item.name, item.skew_pct, TABLE_SKEW_PCT, actions["skew"]))
        if item.rows_since_analyze is not None and item.rows_since_analyze >= ANALYZE_AFTER_ROWS:
            findings.append(
                Finding("analyze", item.name, item.rows_since_analyze, ANALYZE_AFTER_ROWS, actions["analyze"])
            )
    return findings


def _value(field: dict[str, Any]) -> Any:
    """One Redshift Data API field as a Python value."""
    if field.get("isNull"):
        return None
    for key in ("longValue", "doubleValue", "stringValue", "booleanValue"):
        if key in field:
            return field[key]
    raise ValueError(f"unsupported Data API field {sorted(field)}")


def data_api_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A GetStatementResult response as dicts keyed by (lower-case) column name."""
    columns = [column["name"].lower() for column in result["ColumnMetadata"]]
    return [dict(zip(columns, (_value(field) for field in record), strict=True)) for record in result["Records"]]


def health_from_svv_table_info(rows: Iterable[dict[str, Any]]) -> list[TableHealth]:
    """Redshift (Serverless: SVV_TABLE_INFO, no STV/STL): unsorted share, deleted-not-reclaimed share
    (tbl_rows counts rows marked for deletion, estimated_visible_rows does not), skew_rows as a
    percentage above an even spread, and stats_off (0 current … 100 stale) times rows as the rows
    changed since the last ANALYZE."""
    health = []
    for row in rows:
        total = int(row["tbl_rows"] or 0)
        visible = row.get("estimated_visible_rows")
        unused = 100.0 * (total - float(visible)) / total if total and visible is not None else None
        skew = (float(row["skew_rows"]) - 1.0) * 100.0 if row.get("skew_rows") is not None else None
        stale = row.get("stats_off")
        health.append(
            TableHealth(
                name=f"{row['schema_name'].strip()}.{row['table_name'].strip()}",
                rows=total,
                unsorted_pct=float(row["unsorted"]) if row.get("unsorted") is not None else None,
                unused_pct=max(0.0, unused) if unused is not None else None,
                skew_pct=max(0.0, skew) if skew is not None else None,
                rows_since_analyze=round(total * float(stale) / 100.0) if stale is not None else None,
            )
        )
    return health


def embedded_health(cfg: settings.Settings) -> list[TableHealth]:
    """DuckDB: free blocks of the database file (there is no per-table unsorted share or slice skew),
    and per table the rows changed since the last in-batch ANALYZE (from ops.analyze_log; a table
    never analyzed counts all its rows)."""
    from pathlib import Path

    from dpc_elt import embedded

    health = []
    with embedded.connect(cfg) as con:
        embedded.run_file(con, "maintenance/create_analyze_log", {})
        total_blocks, free_blocks = embedded.run_file(con, "maintenance/select_database_size", {})[0]
        unused = 100.0 * free_blocks / total_blocks if total_blocks else 0.0
        health.append(TableHealth(name=f"file {Path(cfg.duckdb_path).name}", rows=0, unused_pct=unused))
        for table in MAINTAINED_TABLES:
            if not _exists(con, table):
                continue
            rows = embedded.run_file(con, "maintenance/count_rows", {}, schema=table.schema, table=table.table)[0][0]
            logged = embedded.run_file(
                con, "maintenance/select_last_analyze", {"schema_name": table.schema, "table_name": table.table}
            )
            since = rows if not logged else abs(rows - logged[0][0])
            health.append(TableHealth(name=table.qualified, rows=rows, rows_since_analyze=since))
    return health
