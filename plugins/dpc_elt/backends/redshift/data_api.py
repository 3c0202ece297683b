"""The Redshift Data API as the production backend uses it: where it works (:class:`Target`, validated
once), how a SQL file becomes a request (:func:`sql_batch`, literal slots), and the provider's
``RedshiftDataHook`` behind :class:`DataApi` — submitting without waiting (the step defers on
:meth:`DataApi.trigger`), quick synchronous reads, and Data API errors mapped to our own.

Values are Data API bound parameters (``:yyyymm``). Three kinds of value cannot be bound, because COPY
and UNLOAD take them as literals of the statement itself, not as expressions: COPY's ``FROM``
location, UNLOAD's query text and ``TO`` location, and ``IAM_ROLE``. They are *literal slots* (also
written ``:name`` in the files) filled by :func:`render_literals` with quoted literals, and only from
values checked against allow-list patterns first: bucket and keys (``s3.S3Uri``), the role ARN
(:data:`IAM_ROLE_PATTERN`) and the month (``params.validate_yyyymm``, six digits) that UNLOAD's query
literal holds. A value that fails its pattern never reaches SQL.

Nothing here logs or raises a database error text: Redshift's messages can quote a rejected value.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook
from airflow.providers.amazon.aws.triggers.redshift_data import RedshiftDataTrigger

from dpc_elt.backends.redshift.s3 import S3Uri
from dpc_elt.core import settings, sqlfiles
from dpc_elt.core.errors import WarehouseBusyError

log = logging.getLogger(__name__)

DIALECT = "redshift"
STAGING_PREFIX = "staging"
POLL_SECONDS = 10  # the triggerer's DescribeStatement polling while a step waits deferred
QUICK_POLL_SECONDS = 1  # a quick read's polling in the worker (counts, lookups: seconds at most)
MAX_BATCH_STATEMENTS = 40  # BatchExecuteStatement's limit

IAM_ROLE_PATTERN = re.compile(r"arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")
WORKGROUP_PATTERN = re.compile(r"[a-z0-9-]{3,64}")
DATABASE_PATTERN = re.compile(r"[a-z_][a-z0-9_$]{0,126}")
_SLOT = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")  # the same placeholder syntax as sqlfiles

# Statement states of DescribeStatement (the provider's RUNNING_STATES and FAILURE_STATES).
FINISHED = "FINISHED"
FAILED = "FAILED"
ABORTED = "ABORTED"
RUNNING = frozenset({"SUBMITTED", "PICKED", "STARTED"})

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
    """A Data API statement failed for a reason other than the data of a raw file. The message names
    the step, the statement's position and status only: the database's error text can quote a value."""


# ======================================================================================== target


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
    """The production locations and warehouse of ``cfg`` (DPC_S3_BUCKET, DPC_RAW_ROOT,
    DPC_PROCESSED_ROOT, DPC_REDSHIFT_WORKGROUP, DPC_REDSHIFT_DATABASE, DPC_REDSHIFT_IAM_ROLE_ARN,
    DPC_AWS_CONN_ID), or ValueError naming the bad setting."""
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


def joined(batches: list[Batch]) -> Batch:
    """Several files' statements as one batch (one transaction)."""
    if not batches:
        raise ValueError("no statements to run")
    total = batches[0]
    for batch in batches[1:]:
        total += batch
    return total


# ===================================================================================== Data API


@contextmanager
def data_api_errors() -> Iterator[None]:
    """Throttling and service-side Data API errors become WarehouseBusyError (retried by the step's
    retry policy, like the ASL's ThrottlingException / RedshiftData.Exception)."""
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


def new_hook(aws_conn_id: str | None) -> RedshiftDataHook:
    """The provider's hook for the Airflow AWS connection (no lookup until the first call)."""
    return RedshiftDataHook(aws_conn_id=aws_conn_id)


def field_value(field: Mapping[str, Any]) -> Any:
    """One Data API result field as a Python value."""
    if field.get("isNull"):
        return None
    for key in ("stringValue", "longValue", "doubleValue", "booleanValue"):
        if key in field:
            return field[key]
    raise ValueError(f"unsupported Data API field {sorted(field)}")


def statement_name(step: str, what: str) -> str:
    """The StatementName shown in the Redshift console and SYS_QUERY_HISTORY: step and month/table."""
    return f"dpc_elt.{step}.{what}"


def is_transient_failure(described: Mapping[str, Any]) -> bool:
    """Whether a failed statement lost to a concurrent transaction (a re-run clears it). The error
    text is only matched, never kept."""
    texts = [str(described.get("Error") or "")]
    texts += [str(sub.get("Error") or "") for sub in described.get("SubStatements") or []]
    return any(_TRANSIENT_STATEMENT_ERRORS.search(text) for text in texts)


def failed_position(described: Mapping[str, Any]) -> tuple[int, int, Mapping[str, Any]]:
    """The first failed sub-statement of a batch (1-based position, count, its description); a single
    statement is position 1 of 1."""
    subs = described.get("SubStatements") or [described]
    failed = next((s for s in subs if s.get("Status") in (FAILED, ABORTED)), subs[-1])
    return subs.index(failed) + 1, len(subs), failed


class DataApi:
    """Statements through the provider's RedshiftDataHook, for the configured workgroup and database."""

    def __init__(self, where: Target, hook: RedshiftDataHook | None = None) -> None:
        self.where = where
        self.hook = hook or new_hook(where.aws_conn_id)

    def _execute(self, batch: Batch, values: Mapping[str, str], name: str | None, single: bool) -> str:
        if single and len(batch.statements) != 1:
            raise ValueError("single=True needs exactly one statement")
        if not single and len(batch.statements) > MAX_BATCH_STATEMENTS:
            raise ValueError(f"{len(batch.statements)} statements: a batch holds at most {MAX_BATCH_STATEMENTS}")
        with data_api_errors():
            output = self.hook.execute_query(
                sql=batch.statements[0] if single else batch.statements,
                database=self.where.database,
                workgroup_name=self.where.workgroup,
                parameters=batch.parameters(values),
                statement_name=name,
                wait_for_completion=False,
                poll_interval=POLL_SECONDS,
            )
        return output.statement_id

    def submit(self, batch: Batch, values: Mapping[str, str], *, name: str, single: bool = False) -> str:
        """Send ``batch`` without waiting: BatchExecuteStatement (one transaction), or with ``single``
        ExecuteStatement (outside any transaction: VACUUM, UNLOAD). Returns the statement id."""
        statement_id = self._execute(batch, values, name, single)
        log.info("%s submitted: %d statement(s), id %s", name, len(batch.statements), statement_id)
        return statement_id

    def run(self, batch: Batch, values: Mapping[str, str], *, name: str | None = None, single: bool = False) -> str:
        """Send ``batch`` and wait in the worker — for quick reads only. A failed statement raises
        WarehouseBusyError when a concurrent transaction won, else RedshiftStatementError (status only)."""
        statement_id = self._execute(batch, values, name, single)
        described = self.wait(statement_id)
        if described["Status"] != FINISHED:
            if is_transient_failure(described):
                raise WarehouseBusyError(f"{name or 'query'}: lost to a concurrent transaction")
            raise RedshiftStatementError(f"{name or 'query'}: statement {described['Status']} ({statement_id})")
        return statement_id

    def wait(self, statement_id: str) -> dict[str, Any]:
        """DescribeStatement until the statement stopped running (what the provider's hook does, without
        its exception, whose text holds the database's error message)."""
        while True:
            described = self.describe(statement_id)
            if described["Status"] not in RUNNING:
                return described
            time.sleep(QUICK_POLL_SECONDS)

    def trigger(self, statement_id: str, step: str) -> RedshiftDataTrigger:
        """The provider's trigger that waits for ``statement_id`` in the triggerer."""
        return RedshiftDataTrigger(
            statement_id=statement_id,
            task_id=step,
            poll_interval=POLL_SECONDS,
            aws_conn_id=self.where.aws_conn_id,
        )

    def describe(self, statement_id: str) -> dict[str, Any]:
        with data_api_errors():
            return self.hook.conn.describe_statement(Id=statement_id)

    def _pages(self, statement_id: str) -> Iterator[dict[str, Any]]:
        token = None
        with data_api_errors():
            while True:
                kwargs = {"Id": statement_id, **({"NextToken": token} if token else {})}
                page = self.hook.conn.get_statement_result(**kwargs)
                yield page
                token = page.get("NextToken")
                if not token:
                    return

    def records(self, statement_id: str) -> list[list[Any]]:
        """All result rows of one statement (``<id>:<n>`` for the n-th of a batch), every page."""
        return [[field_value(f) for f in record] for page in self._pages(statement_id) for record in page["Records"]]

    def rows(self, statement_id: str) -> list[dict[str, Any]]:
        """All result rows as dicts keyed by lower-case column name."""
        found: list[dict[str, Any]] = []
        for page in self._pages(statement_id):
            columns = [column["name"].lower() for column in page.get("ColumnMetadata") or []]
            found += [dict(zip(columns, map(field_value, record), strict=True)) for record in page["Records"]]
        return found

    def existing_tables(self) -> set[tuple[str, str]]:
        """The pipeline's tables that exist (schema, table): one quick read."""
        values = {"raw_schema": settings.RAW_SCHEMA, "stage_schema": settings.STAGE_SCHEMA}
        values["mart_schema"] = settings.MART_SCHEMA
        statement_id = self.run(sql_batch("shared/select_existing_tables"), values, single=True)
        return {(schema, table) for schema, table in self.records(statement_id)}
