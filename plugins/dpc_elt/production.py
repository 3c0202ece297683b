"""The production backend: S3 and Redshift Serverless through the amazon provider, on Amazon MWAA.

The same step functions as ``dpc_elt.embedded`` where a Python task does the work —
:func:`rollback_stage`, :func:`compute_readmit`, :func:`month_counts`, :func:`export_months` — and
factories for the two steps whose shape differs:

* :func:`validate_manifest`: a deferrable ``S3KeySensor`` for the month's ``_manifest.json``, then the
  embedded path's own ``manifest.validate_month`` on an s3fs filesystem (hashes streamed).
* :func:`copy_raw`: ``transcode`` streams every listed file S3 → ``rawfile.stage_raw_file`` → S3
  (cp932 to UTF-8, multipart, bounded memory) under ``staging/yyyymm=<M>/``, then one
  ``RedshiftDataOperator`` batch per file type (``load_y1``, ``load_ef_in``, ``load_d``):
  ``DELETE`` the month and ``COPY`` it back in one transaction, so a failed COPY leaves the month as
  it was. A rejected line is looked up in ``SYS_LOAD_ERROR_DETAIL`` and raised as ``RawFileError``
  (file, line, column, reason — never the value).

Every statement comes from ``include/sql`` (``redshift/`` overrides where the dialects differ). Values
are Data API bound parameters (``:yyyymm``). Three kinds of value cannot be bound, because COPY and
UNLOAD take them as literals of the statement itself, not as expressions: COPY's ``FROM`` location,
UNLOAD's query text and ``TO`` location, and ``IAM_ROLE``. They are *literal slots* (also written
``:name`` in the files) filled by :func:`render_literals` with quoted literals, and only from values
checked against allow-list patterns first: bucket and keys (``s3.S3Uri``), the role ARN
(:data:`IAM_ROLE_PATTERN`) and the month (``params.validate_yyyymm``, six digits) that UNLOAD's
query literal holds. A value that fails its pattern never reaches SQL.

Importable without a running Airflow: the provider, boto3 and s3fs are imported where used.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from dpc_elt import formats, settings, sqlfiles
from dpc_elt.errors import RawFileError, WarehouseBusyError
from dpc_elt.params import validate_yyyymm
from dpc_elt.s3 import S3Uri

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook
    from airflow.sdk import TaskGroup

    from dpc_elt.manifest import ValidatedManifest
    from dpc_elt.notify import Message

log = logging.getLogger(__name__)

DIALECT = "redshift"
STAGING_PREFIX = "staging"
EXPORT_MANIFEST_NAME = "_manifest.json"
POLL_SECONDS = 10
TRANSCODE_TASK_ID = "copy_raw.transcode"
CHECK_MANIFEST_TASK_ID = "validate_manifest.check_manifest"

IAM_ROLE_PATTERN = re.compile(r"arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")
WORKGROUP_PATTERN = re.compile(r"[a-z0-9-]{3,64}")
DATABASE_PATTERN = re.compile(r"[a-z_][a-z0-9_$]{0,126}")
SNS_TOPIC_PATTERN = re.compile(r"arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")
_SLOT = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")  # the same placeholder syntax as sqlfiles

# Data API errors worth a retry (the ASL's ThrottlingException and RedshiftData.Exception): busy,
# throttled or briefly unreachable — never a statement that failed on its data.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ActiveStatementsExceededException",
        "ActiveSessionsExceededException",
        "ActiveWaitingRequestsExceededException",
        "InternalServerException",
        "ServiceUnavailableException",
        "ExecuteStatementException",
        "BatchExecuteStatementException",
    }
)
# Statement errors that a re-run clears: a concurrent transaction won (Redshift error 1023).
_TRANSIENT_STATEMENT_ERRORS = re.compile(r"serializable isolation violation|\b1023\b|concurrent transaction", re.I)

# Redshift's load error codes (Load error reference), as fixed value-free texts.
LOAD_ERRORS = {
    1201: "field delimiter not found",
    1202: "more columns than the table",
    1203: "fewer columns than the table",
    1204: "value longer than the column allows (bytes)",
    1205: "date format not valid",
    1206: "timestamp format not valid",
    1207: "digit outside 0-9 in a number",
    1211: "line holds no data",
    1213: "empty field in a NOT NULL column",
    1214: "delimiter not found",
    1216: "line not valid",
    1218: "NUL byte in a field",
    1220: "invalid or unsupported UTF-8 code point",
    1221: "encoding differs from the COPY's",
    1222: "integer overflow",
}


class RedshiftStatementError(RuntimeError):
    """A Data API statement failed for a reason other than the data of a raw file (type-only in
    notices: the database's error text can quote a value)."""


# ====================================================================================== settings


@dataclass(frozen=True)
class Target:
    """Where production works, validated once. Every value here may reach a COPY/UNLOAD literal or
    an API call; a bad one is refused with the environment variable that set it."""

    raw: S3Uri
    staging: S3Uri
    processed: S3Uri
    workgroup: str
    database: str
    iam_role_arn: str
    aws_conn_id: str | None


def _checked(name: str, value: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{name} must be {what}")
    return value


def _s3(name: str, value: str) -> S3Uri:
    try:
        return S3Uri.parse(value)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def target(cfg: settings.Settings) -> Target:
    """The production locations and warehouse of ``cfg``, or ValueError naming the bad setting."""
    bucket = _s3("DPC_S3_BUCKET", f"s3://{cfg.s3_bucket}").bucket
    return Target(
        raw=_s3("DPC_RAW_ROOT", cfg.raw_root),
        staging=S3Uri(bucket, STAGING_PREFIX),
        processed=_s3("DPC_PROCESSED_ROOT", cfg.processed_root),
        workgroup=_checked(
            "DPC_REDSHIFT_WORKGROUP", cfg.redshift_workgroup, WORKGROUP_PATTERN, "a Serverless workgroup name"
        ),
        database=_checked(
            "DPC_REDSHIFT_DATABASE", cfg.redshift_database, DATABASE_PATTERN, "a lower-case database name"
        ),
        iam_role_arn=_checked(
            "DPC_REDSHIFT_IAM_ROLE_ARN",
            cfg.redshift_iam_role_arn,
            IAM_ROLE_PATTERN,
            "an IAM role ARN (arn:aws:iam::<account>:role/<name>) associated with the namespace",
        ),
        aws_conn_id=cfg.aws_conn_id or None,
    )


# ================================================================================== SQL literals


def sql_literal(value: str) -> str:
    """A Redshift string literal. Callers pass validated values only; a backslash (an escape in
    Redshift literals) or a control character is refused here as a last guard, quotes are doubled."""
    if "\\" in value or any(ord(c) < 0x20 for c in value):
        raise ValueError("a SQL literal may not hold a backslash or a control character")
    return "'" + value.replace("'", "''") + "'"


def render_literals(statement: str, literals: Mapping[str, str]) -> str:
    """Fill the literal slots ``:name`` of ``literals`` with quoted literals; other ``:name`` stay
    bound parameters. Every slot named in ``literals`` must occur."""
    missing = set(literals) - set(_SLOT.findall(statement))
    if missing:
        raise ValueError(f"literal slots not in the statement: {sorted(missing)}")
    return _SLOT.sub(lambda m: sql_literal(literals[m[1]]) if m[1] in literals else m[0], statement)


@dataclass(frozen=True)
class Batch:
    """Statements for one Data API call and the names they bind."""

    statements: list[str]
    bound: frozenset[str]

    def parameters(self, values: Mapping[str, str]) -> list[dict[str, str]] | None:
        """Exactly the parameters the statements reference: the Data API refuses a batch parameter
        that no statement uses."""
        missing = self.bound - set(values)
        if missing:
            raise ValueError(f"no value for bound parameters {sorted(missing)}")
        return [{"name": name, "value": str(values[name])} for name in sorted(self.bound)] or None

    def __add__(self, other: Batch) -> Batch:
        return Batch(self.statements + other.statements, self.bound | other.bound)


def sql_batch(name: str, literals: Mapping[str, str] | None = None, **identifiers: object) -> Batch:
    """The statements of one SQL file for Redshift, literal slots filled."""
    literals = literals or {}
    raw = sqlfiles.statements(name, DIALECT, **identifiers)
    bound = frozenset().union(*(sqlfiles.bound_names(s) for s in raw)) - set(literals)
    rendered = []
    for statement in raw:
        used = {k: v for k, v in literals.items() if k in _SLOT.findall(statement)}
        rendered.append(render_literals(statement, used))
    unused = set(literals) - frozenset().union(*(set(_SLOT.findall(s)) for s in raw))
    if unused:
        raise ValueError(f"{name}: literal slots not in the file: {sorted(unused)}")
    return Batch(rendered, bound)


# ===================================================================================== Data API


@contextmanager
def data_api_errors() -> Iterator[None]:
    """Throttling and service-side Data API errors become WarehouseBusyError (retried by the
    step's retry policy, like the ASL's ThrottlingException / RedshiftData.Exception)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in TRANSIENT_ERROR_CODES:
            raise WarehouseBusyError(f"Redshift Data API: {code}") from error
        raise
    except (ConnectionError, HTTPClientError) as error:
        raise WarehouseBusyError(f"Redshift Data API unreachable: {type(error).__name__}") from error


def data_hook(cfg: settings.Settings) -> RedshiftDataHook:
    from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook

    return RedshiftDataHook(aws_conn_id=target(cfg).aws_conn_id)


def field_value(field: Mapping[str, Any]) -> Any:
    """One Data API result field as a Python value."""
    if field.get("isNull"):
        return None
    for key in ("stringValue", "longValue", "doubleValue", "booleanValue"):
        if key in field:
            return field[key]
    raise ValueError(f"unsupported Data API field {sorted(field)}")


class DataApi:
    """Statements through the provider's RedshiftDataHook, for the configured workgroup and database."""

    def __init__(self, cfg: settings.Settings, hook: RedshiftDataHook | None = None) -> None:
        where = target(cfg)
        self.workgroup, self.database = where.workgroup, where.database
        self.hook = hook or data_hook(cfg)

    def run(self, batch: Batch, values: Mapping[str, str], *, name: str | None = None, single: bool = False) -> str:
        """Run ``batch`` (BatchExecuteStatement: one transaction; ``single``: ExecuteStatement) and
        wait for it. Returns the statement id; a failed statement raises the provider's error."""
        if single and len(batch.statements) != 1:
            raise ValueError("single=True needs exactly one statement")
        with data_api_errors():
            output = self.hook.execute_query(
                sql=batch.statements[0] if single else batch.statements,
                database=self.database,
                workgroup_name=self.workgroup,
                parameters=batch.parameters(values),
                statement_name=name,
                wait_for_completion=True,
                poll_interval=POLL_SECONDS,
            )
        return output.statement_id

    def records(self, statement_id: str) -> list[list[Any]]:
        """All result rows of one statement (``<id>:<n>`` for the n-th of a batch), every page."""
        rows: list[list[Any]] = []
        token = None
        with data_api_errors():
            while True:
                kwargs = {"Id": statement_id, **({"NextToken": token} if token else {})}
                page = self.hook.conn.get_statement_result(**kwargs)
                rows += [[field_value(f) for f in record] for record in page["Records"]]
                token = page.get("NextToken")
                if not token:
                    return rows

    def describe(self, statement_id: str) -> dict[str, Any]:
        with data_api_errors():
            return self.hook.conn.describe_statement(Id=statement_id)


def _statement_name(step: str, yyyymm: str) -> str:
    return f"dpc_elt.{step}.{yyyymm}"


def _existing_tables(api: DataApi) -> set[tuple[str, str]]:
    values = {"raw_schema": settings.RAW_SCHEMA, "stage_schema": settings.STAGE_SCHEMA}
    values["mart_schema"] = settings.MART_SCHEMA
    statement_id = api.run(sql_batch("shared/select_existing_tables"), values, single=True)
    return {(schema, table) for schema, table in api.records(statement_id)}


# ===================================================================== step functions (as embedded)


def rollback_stage(yyyymm: str, cfg: settings.Settings) -> dict[str, int]:
    """rollback_stage: delete the failed month from every existing stage table, one batch (one
    transaction). Returns the rows deleted per table (DescribeStatement's ResultRows)."""
    validate_yyyymm(yyyymm)
    api = DataApi(cfg)
    existing = _existing_tables(api)
    tables = [t for t in settings.STAGE_TABLES if (settings.STAGE_SCHEMA, t) in existing]
    if not tables:
        return {}
    batches = [sql_batch("shared/delete_month", schema=settings.STAGE_SCHEMA, table=t) for t in tables]
    if any(len(b.statements) != 1 for b in batches):
        raise RuntimeError("shared/delete_month must hold one statement")
    batch = sum(batches[1:], batches[0])
    statement_id = api.run(batch, {"yyyymm": yyyymm}, name=_statement_name("rollback_stage", yyyymm))
    subs = api.describe(statement_id).get("SubStatements", [])
    return {table: int(sub.get("ResultRows") or 0) for table, sub in zip(tables, subs, strict=True)}


def compute_readmit(yyyymm: str, cfg: settings.Settings) -> list[str]:
    """compute_readmit: the portable readmission SQL as one batch (create + merge, one transaction,
    ``:yyyymm`` bound); the last statement's rows — the months whose summary rows changed — are read
    with GetStatementResult of the sub-statement ``<id>:<n>``."""
    validate_yyyymm(yyyymm)
    batch = sql_batch("compute_readmit/create_fact_case_summary") + sql_batch("compute_readmit/merge_fact_case_summary")
    api = DataApi(cfg)
    statement_id = api.run(batch, {"yyyymm": yyyymm}, name=_statement_name("compute_readmit", yyyymm))
    rows = api.records(f"{statement_id}:{len(batch.statements)}")
    return sorted({str(row[0]) for row in rows} | {yyyymm})


def month_counts(yyyymm: str, cfg: settings.Settings) -> dict[str, int]:
    """Rows of the month in every table the run wrote, for the success notice (one batch of counts)."""
    validate_yyyymm(yyyymm)
    tables = [(settings.RAW_SCHEMA, layout.raw_table) for layout in formats.LAYOUTS.values()]
    tables += [(settings.STAGE_SCHEMA, table) for table in settings.STAGE_TABLES]
    tables += [(settings.MART_SCHEMA, settings.SUMMARY_TABLE)]
    api = DataApi(cfg)
    existing = _existing_tables(api)
    present = [(schema, table) for schema, table in tables if (schema, table) in existing]
    if not present:
        return {}
    batches = [sql_batch("shared/count_month", schema=schema, table=table) for schema, table in present]
    batch = sum(batches[1:], batches[0])
    statement_id = api.run(batch, {"yyyymm": yyyymm}, name=_statement_name("month_counts", yyyymm))
    return {
        f"{schema}.{table}": int(api.records(f"{statement_id}:{n}")[0][0])
        for n, (schema, table) in enumerate(present, start=1)
    }


def quality_report_rows(yyyymm: str, cfg: settings.Settings) -> dict[str, list[list[Any]]]:
    """The monthly quality report's queries (``include/sql/quality_report``, see
    ``dpc_elt.quality_report.queries``) as one batch with ``:yyyymm`` bound; each sub-statement's
    rows (aggregates only) are read with GetStatementResult of ``<id>:<n>``."""
    from dpc_elt.quality_report import queries

    validate_yyyymm(yyyymm)
    specs = queries()
    batches = [sql_batch(q.name, **q.identifiers) for q in specs]
    if any(len(b.statements) != 1 for b in batches):
        raise RuntimeError("every quality_report SQL file must hold one statement")
    batch = sum(batches[1:], batches[0])
    api = DataApi(cfg)
    statement_id = api.run(batch, {"yyyymm": yyyymm}, name=_statement_name("quality_report", yyyymm))
    return {q.key: api.records(f"{statement_id}:{n}") for n, q in enumerate(specs, start=1)}


def unload_query(table: str, yyyymm: str) -> str:
    """The export query of one mart table for one month, as UNLOAD's query literal needs it: the
    portable ``export_parquet/select_<table>.sql`` with the month written in. The month is validated
    (six digits of a real month) *before* it is rendered, so nothing else can enter the literal."""
    validate_yyyymm(yyyymm)
    if table not in settings.EXPORT_TABLES:
        raise ValueError(f"{table} is not an export table")
    (statement,) = sqlfiles.statements(f"export_parquet/select_{table}", DIALECT)
    # One line: the literal may not hold control characters (the file has no text literals to keep).
    return render_literals(" ".join(statement.split()), {"yyyymm": yyyymm})


def export_months(months: Sequence[str], cfg: settings.Settings) -> list[dict[str, Any]]:
    """export_parquet: for each month, clear ``<processed_root>/yyyymm=<M>/`` (the seed's
    DeleteObjects), UNLOAD it as Parquet (PARTITION BY yyyymm INCLUDE, CLEANPATH), check the rows of
    the Parquet footers against the table, then write ``_manifest.json`` (files, rows, bytes,
    SHA-256 streamed) last: a reader that sees the manifest sees a complete month."""
    from dpc_elt import s3
    from dpc_elt.manifest import export_manifest

    where = target(cfg)
    if len(settings.EXPORT_TABLES) != 1:
        # UNLOAD … CLEANPATH owns the month folder: a second exported table needs its own prefix.
        raise ValueError("the production export writes exactly one table per month folder")
    (table,) = settings.EXPORT_TABLES
    fs = s3.filesystem(where.aws_conn_id)
    api = DataApi(cfg)
    written = []
    for yyyymm in months:
        validate_yyyymm(yyyymm)  # before it is written into UNLOAD's query literal
        prefix = where.processed.join(f"yyyymm={yyyymm}")
        if fs.exists(prefix.path):
            fs.rm(prefix.path, recursive=True)
        literals = {
            "unload_query": unload_query(table, yyyymm),
            "unload_target": f"{where.processed}/",
            "iam_role_arn": where.iam_role_arn,
        }
        unload = sql_batch("export_parquet/unload_month", literals)
        api.run(unload, {}, single=True, name=_statement_name("export_parquet", yyyymm))
        files = _describe_parts(fs, prefix, f"{settings.MART_SCHEMA}.{table}")
        count = sql_batch("shared/count_month", schema=settings.MART_SCHEMA, table=table)
        expected = int(api.records(api.run(count, {"yyyymm": yyyymm}, single=True))[0][0])
        exported = sum(f["rows"] for f in files)
        if exported != expected:
            raise RuntimeError(f"{prefix}: Parquet files hold {exported} rows, {table} has {expected}")
        manifest = export_manifest(yyyymm, files)
        with fs.open(prefix.join(EXPORT_MANIFEST_NAME).path, "w") as handle:
            json.dump(manifest, handle, ensure_ascii=False, indent=2)
        written.append({"yyyymm": yyyymm, "uri": str(prefix), "files": files})
    return written


def _describe_parts(fs: Any, prefix: S3Uri, table: str) -> list[dict[str, Any]]:
    """Every object UNLOAD wrote under ``prefix``: name, rows (Parquet footer), bytes, SHA-256."""
    from dpc_elt import s3

    fs.invalidate_cache(prefix.path)
    files = []
    for key in sorted(fs.find(prefix.path)):
        uri = S3Uri.parse(f"s3://{key}")
        if uri.name == EXPORT_MANIFEST_NAME:
            continue
        sha256, size = s3.sha256_of(fs, uri)
        name = key[len(prefix.path) + 1 :]
        files.append({"table": table, "path": name, "rows": s3.parquet_rows(fs, uri), "bytes": size, "sha256": sha256})
    return files


# ========================================================================================== SNS


def sns_subject(message: Message) -> str:
    """SNS subjects must be ASCII, one line, under 100 characters: the message's subject without
    its status mark."""
    text = f"{message.dag_id} {message.yyyymm or '(month unknown)'} {message.status} [{message.environment}]"
    text = "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in text)
    return text[:99]


def publish_sns(message: Message, context: Any, cfg: settings.Settings) -> str:
    """Publish the same notice as Slack (``Message.text()``) to the SNS topic, through the amazon
    provider's SnsNotifier; subscribers can filter on the status, environment and month attributes."""
    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

    arn = _checked("DPC_SNS_TOPIC_ARN", cfg.sns_topic_arn, SNS_TOPIC_PATTERN, "an SNS topic ARN")
    attributes = {"status": message.status, "environment": message.environment, "dag_id": message.dag_id}
    if message.yyyymm:
        attributes["yyyymm"] = message.yyyymm
    SnsNotifier(
        aws_conn_id=cfg.aws_conn_id or None,
        target_arn=arn,
        message=message.text(),
        subject=sns_subject(message),
        message_attributes=attributes,
    ).notify(context)
    return f"sns:{arn}"


# ========================================================================== validate_manifest (S3)


@cache
def _manifest_key_sensor_class() -> type:
    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

    class ManifestKeySensor(S3KeySensor):
        """S3KeySensor (deferrable) for the run month's ``_manifest.json``; on timeout a scheduled run
        ends skipped and a manual one fails, as the embedded ManifestSensor does."""

        ui_color = "#e8f4fa"

        def __init__(self, *, raw_root: str, poke_seconds: int = 60, **kwargs: Any) -> None:
            super().__init__(
                bucket_key=f"{raw_root}/yyyymm=<the run's month>/_manifest.json",
                deferrable=True,
                poke_interval=poke_seconds,
                **kwargs,
            )
            self.raw_root = raw_root

        def _key_for(self, context: Any) -> str:
            from dpc_elt.manifest import MANIFEST_NAME, month_uri
            from dpc_elt.params import month_of_context

            return f"{month_uri(self.raw_root, month_of_context(context))}/{MANIFEST_NAME}"

        def execute(self, context: Any) -> None:
            from dpc_elt.sensors import ManifestSensor

            self.bucket_key = self._key_for(context)
            wait_seconds = int(context["params"]["manifest_wait_minutes"]) * 60
            self.timeout = float(wait_seconds)
            if wait_seconds == 0:
                if not self.poke(context):
                    ManifestSensor._timed_out(context, self.bucket_key)
                return
            super().execute(context)

        def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
            from airflow.sdk.exceptions import AirflowSensorTimeout

            from dpc_elt.sensors import ManifestSensor

            try:
                return super().resume_execution(next_method, next_kwargs, context)
            except AirflowSensorTimeout:
                ManifestSensor._timed_out(context, self._key_for(context))

    ManifestKeySensor.__module__, ManifestKeySensor.__qualname__ = __name__, "ManifestKeySensor"
    return ManifestKeySensor


def validate_month_on_s3(yyyymm: str, cfg: settings.Settings) -> ValidatedManifest:
    """The embedded validation (schema, names, sizes, SHA-256 and records, all streamed) on S3."""
    from dpc_elt import s3
    from dpc_elt.manifest import validate_month

    where = target(cfg)
    return validate_month(str(where.raw), yyyymm, fs=s3.filesystem(where.aws_conn_id))


def manifest_sensor(cfg: settings.Settings, **kwargs: Any) -> Any:
    """ValidateManifest's wait on S3: the deferrable S3KeySensor for the run month's manifest."""
    where = target(cfg)
    return _manifest_key_sensor_class()(
        task_id="wait_for_manifest",
        raw_root=str(where.raw),
        aws_conn_id=where.aws_conn_id,
        poke_seconds=cfg.manifest_poke_seconds,
        doc_md="Waits (deferred, no worker slot held) for `s3://…/raw/yyyymm=<YYYYMM>/_manifest.json`.",
        **kwargs,
    )


# ====================================================================================== copy_raw


def stage_month(yyyymm: str, manifest: ValidatedManifest, cfg: settings.Settings) -> dict[str, Any]:
    """copy_raw.transcode: every listed file, cp932 → UTF-8 with every line checked, into
    ``staging/yyyymm=<M>/<file>.tsv``; then one COPY manifest per file type. The month's staging
    prefix is emptied first, so only this delivery can be loaded."""
    from dpc_elt import s3

    validate_yyyymm(yyyymm)
    where = target(cfg)
    fs = s3.filesystem(where.aws_conn_id)
    raw_month = where.raw.join(f"yyyymm={yyyymm}")
    staging_month = where.staging.join(f"yyyymm={yyyymm}")
    if fs.exists(staging_month.path):
        fs.rm(staging_month.path, recursive=True)
    duplicates = s3.Y1DuplicateCheck()
    staged: list[dict[str, Any]] = []
    for listed in sorted(manifest.files, key=lambda f: (formats.FILE_TYPES.index(f.file_type), f.path)):
        result = s3.stage_to_s3(
            fs,
            raw_month.join(listed.path),
            staging_month.join(f"{listed.path}.tsv"),
            file_type=listed.file_type,
            yyyymm=yyyymm,
            expected_sha256=listed.sha256,
            inspect=duplicates.for_file(listed.path) if listed.file_type == formats.Y1.file_type else None,
        )
        log.info("staged %s: %d records, %d bytes UTF-8", listed.path, result.records, result.staged_bytes)
        staged.append(result.to_dict())
    copy_manifests: dict[str, str] = {}
    for file_type in formats.FILE_TYPES:
        uris = [f["staged_uri"] for f in staged if f["file_type"] == file_type and f["records"] > 0]
        if uris:
            manifest_uri = staging_month.join(f"_copy_{file_type}.manifest")
            s3.write_copy_manifest(fs, manifest_uri, uris)
            copy_manifests[file_type] = str(manifest_uri)
    return {"yyyymm": yyyymm, "files": staged, "copy_manifests": copy_manifests}


def copy_batch(file_type: str, yyyymm: str | None, copy_manifest_uri: str | None, cfg: settings.Settings) -> Batch:
    """One file type's load batch: create the raw table if missing, DELETE the month, COPY the staged
    objects (no COPY when the delivery has no rows of this type: the month ends empty, as embedded)."""
    layout = formats.LAYOUTS[file_type]
    identifiers = {"schema": settings.RAW_SCHEMA, "table": layout.raw_table}
    batch = sql_batch("copy_raw/create_raw_table", **identifiers, columns=layout.columns)
    batch += sql_batch("shared/delete_month", **identifiers)
    columns = formats.LINEAGE_COLUMNS + layout.columns
    if copy_manifest_uri is not None:
        literals = {"copy_manifest_uri": str(S3Uri.parse(copy_manifest_uri)), "iam_role_arn": target(cfg).iam_role_arn}
        batch += sql_batch("copy_raw/copy_staged_files", literals, **identifiers, columns=columns)
    elif yyyymm is None:  # the parse-time preview (shown in the UI) has the COPY with its slots unfilled
        preview = sqlfiles.statements("copy_raw/copy_staged_files", DIALECT, **identifiers, columns=columns)
        batch += Batch(preview, frozenset())
    return batch


def _supports_durable(operator_class: type) -> bool:
    """Whether this provider's operator takes ``durable`` (RedshiftDataOperator on Airflow 3.3+ via
    ResumableJobMixin; older providers would pass it on to BaseOperator, which refuses it)."""
    for klass in operator_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None and "durable" in inspect.signature(init).parameters:
            return True
    return False


@cache
def _copy_raw_operator_class() -> type:
    from airflow.providers.amazon.aws.hooks.redshift_data import (
        RedshiftDataQueryAbortedError,
        RedshiftDataQueryFailedError,
    )
    from airflow.providers.amazon.aws.operators.redshift_data import RedshiftDataOperator

    class CopyRawOperator(RedshiftDataOperator):
        """One file type's DELETE + COPY batch through the Data API (deferrable; durable where the
        provider supports it). The statements are built at run time from the transcode result: the
        month is bound as ``:yyyymm``, the COPY manifest and role are validated literals. A failed
        COPY is explained from SYS_LOAD_ERROR_DETAIL as a RawFileError (file, line, column, reason)."""

        ui_color = "#fde8d7"

        def __init__(self, *, file_type: str, **kwargs: Any) -> None:
            cfg = settings.get_settings()
            preview = copy_batch(file_type, None, None, cfg)
            super().__init__(sql=preview.statements, **kwargs)
            self.file_type = file_type

        # --- the plan: statements, parameters, expected rows ------------------------------------
        def _plan(self, context: Any) -> dict[str, Any]:
            staged = context["ti"].xcom_pull(task_ids=TRANSCODE_TASK_ID)
            if not staged:
                raise RuntimeError(f"{TRANSCODE_TASK_ID} left no result: clear copy_raw.transcode too")
            validate_yyyymm(staged["yyyymm"])
            return staged

        def prepare(self, context: Any) -> None:
            staged = self._plan(context)
            yyyymm = staged["yyyymm"]
            manifest_uri = staged["copy_manifests"].get(self.file_type)
            batch = copy_batch(self.file_type, yyyymm, manifest_uri, settings.get_settings())
            self.sql = batch.statements
            self.parameters = batch.parameters({"yyyymm": yyyymm})
            self.statement_name = _statement_name(f"copy_raw.{self.file_type}", yyyymm)
            self.expected_rows = sum(f["records"] for f in staged["files"] if f["file_type"] == self.file_type)
            self.with_copy = manifest_uri is not None
            log.info(
                "%s: %d statements, month %s, %d rows to load", self.task_id, len(self.sql), yyyymm, self.expected_rows
            )

        # --- run ----------------------------------------------------------------------------------
        def execute(self, context: Any) -> Any:
            self.prepare(context)
            try:
                with data_api_errors():
                    return super().execute(context)
            except (RedshiftDataQueryFailedError, RedshiftDataQueryAbortedError) as error:
                self._raise_failure(context, getattr(self, "statement_id", None), error)

        def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
            self.prepare(context)
            if event and event.get("status") == "error":
                if event.get("type") in ("FAILED", "ABORTED"):
                    self._raise_failure(context, event.get("statement_id"), None)
                # The triggerer's own Data API call failed (throttled, unreachable): retry the batch.
                raise WarehouseBusyError(f"{self.task_id}: waiting for the statement failed in the triggerer")
            with data_api_errors():
                return super().execute_complete(context, event)

        def get_sql_results(self, statement_id: str, return_sql_result: bool) -> dict[str, Any]:
            """Instead of the sub-statement ids: the rows the COPY loaded, checked against the
            records the transcode staged (COPY with MAXERROR 0 loads all or fails)."""
            described = self.hook.conn.describe_statement(Id=statement_id)
            loaded = int(described["SubStatements"][-1].get("ResultRows", -1)) if self.with_copy else 0
            if loaded < 0:  # -1: the Data API did not report a count; MAXERROR 0 still held
                log.warning("%s: the Data API reported no row count for the COPY", self.task_id)
                loaded = self.expected_rows
            if loaded != self.expected_rows:
                raise RedshiftStatementError(
                    f"{self.task_id}: COPY loaded {loaded} rows, {self.expected_rows} were staged"
                )
            log.info("%s: %d rows loaded (statement %s)", self.task_id, loaded, statement_id)
            return {"file_type": self.file_type, "rows": loaded, "statement_id": statement_id}

        # --- failure ------------------------------------------------------------------------------
        def _raise_failure(self, context: Any, statement_id: str | None, error: BaseException | None) -> None:
            if not statement_id:
                raise RedshiftStatementError(f"{self.task_id}: the batch failed before it had an id") from error
            with data_api_errors():
                described = self.hook.conn.describe_statement(Id=statement_id)
            subs = described.get("SubStatements") or [described]
            failed = next((s for s in subs if s.get("Status") in ("FAILED", "ABORTED")), subs[-1])
            position = subs.index(failed) + 1
            text = str(failed.get("Error") or described.get("Error") or "")
            is_copy = str(failed.get("QueryString", "")).lstrip().lower().startswith("copy")
            if is_copy and failed.get("Status") == "FAILED":
                try:
                    load_error = self._load_error(context, failed)
                except Exception as lookup:  # the COPY's own failure is what must be reported
                    log.warning("%s: SYS_LOAD_ERROR_DETAIL lookup failed (%s)", self.task_id, type(lookup).__name__)
                    load_error = None
                if load_error is not None:
                    raise load_error from None
            if _TRANSIENT_STATEMENT_ERRORS.search(text):
                raise WarehouseBusyError(f"{self.task_id}: statement {position} lost to a concurrent transaction")
            raise RedshiftStatementError(
                f"{self.task_id}: statement {position} of {len(subs)} {failed.get('Status')} ({statement_id})"
            ) from error

        def _load_error(self, context: Any, failed: Mapping[str, Any]) -> RawFileError | None:
            """The first SYS_LOAD_ERROR_DETAIL row of the failed COPY, as a value-free RawFileError."""
            staged = self._plan(context)
            cfg = settings.get_settings()
            staging_month = target(cfg).staging.join(f"yyyymm={staged['yyyymm']}")
            created = failed.get("CreatedAt") or datetime.now(UTC)
            values = {
                "query_id": str(int(failed.get("RedshiftQueryId") or -1)),
                "staged_prefix": f"{staging_month}/%",
                "since": created.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            }
            api = DataApi(cfg, hook=self.hook)
            rows = api.records(api.run(sql_batch("copy_raw/select_load_errors"), values, single=True))
            if not rows:
                return None
            file_name, staged_line, column, code = rows[0]
            staged_name = str(file_name).rsplit("/", 1)[-1]
            by_name = {S3Uri.parse(f["staged_uri"]).name: f for f in staged["files"]}
            source = by_name.get(staged_name)
            source_file = source["source_file"] if source else staged_name.removesuffix(".tsv")
            line = int(staged_line) + (source["first_line_no"] - 1 if source else 0) if staged_line else None
            reason = LOAD_ERRORS.get(int(code), "rejected")
            error = RawFileError(
                source_file, f"COPY rejected the line: {reason}", f"column {column}, load error {code}", line=line
            )
            log.error("%s: %s", self.task_id, error)
            from dpc_elt import operations

            operations.report_copy_error(error.file, error.line)  # the CopyErrorCount log line
            return error

    CopyRawOperator.__module__, CopyRawOperator.__qualname__ = __name__, "CopyRawOperator"
    return CopyRawOperator


def __getattr__(name: str) -> Any:
    """``ManifestKeySensor`` and ``CopyRawOperator`` are built on first use, so importing this module
    does not import the amazon provider."""
    if name == "ManifestKeySensor":
        return _manifest_key_sensor_class()
    if name == "CopyRawOperator":
        return _copy_raw_operator_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def copy_raw() -> TaskGroup:
    """CopyRaw on Redshift: ``transcode`` (S3 → UTF-8 S3), then per file type one Data API batch."""
    from airflow.sdk import TaskGroup, chain, task

    from dpc_elt import steps

    cfg = settings.get_settings()
    where = target(cfg)
    operator_class = _copy_raw_operator_class()
    durable = {"durable": True} if _supports_durable(operator_class) else {}
    with TaskGroup(
        group_id="copy_raw",
        tooltip="Transcode every file to UTF-8 on S3, then per file type DELETE + COPY the month (one transaction)",
    ) as group:

        @task(task_id="transcode", pool=settings.WAREHOUSE_POOL, **steps.COPY_RAW_RETRY)
        def transcode(**context: Any) -> dict[str, Any]:
            """cp932 → UTF-8 under staging/, every line checked; nothing is loaded here."""
            from dpc_elt import operations
            from dpc_elt.manifest import ValidatedManifest

            checked = context["ti"].xcom_pull(task_ids=CHECK_MANIFEST_TASK_ID)
            if not checked:
                raise RuntimeError("validate_manifest.check_manifest left no result: clear validate_manifest too")
            manifest = ValidatedManifest.from_dict(checked["manifest"])
            with operations.copy_errors_reported():  # the CopyErrorCount log line, then the error
                return stage_month(checked["yyyymm"], manifest, settings.get_settings())

        loads = [
            operator_class(
                task_id=f"load_{file_type}",
                file_type=file_type,
                workgroup_name=where.workgroup,
                database=where.database,
                aws_conn_id=where.aws_conn_id,
                deferrable=True,
                poll_interval=POLL_SECONDS,
                pool=settings.WAREHOUSE_POOL,
                doc_md=f'DELETE the month from `"raw".{formats.LAYOUTS[file_type].raw_table}`, then COPY it '
                "from the staged UTF-8 objects: one Data API batch, one transaction.",
                **durable,
                **steps.COPY_RAW_RETRY,
            )
            for file_type in formats.FILE_TYPES
        ]
        # One batch at a time: the batches share CREATE SCHEMA "raw", and a month is loaded in order.
        chain(transcode(), *loads)
    return group
