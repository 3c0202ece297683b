"""export_parquet on Redshift, one month at a time: clear ``<processed_root>/yyyymm=<M>/`` (the seed's
DeleteObjects), UNLOAD the month as Parquet (one ExecuteStatement: PARTITION BY yyyymm INCLUDE,
CLEANPATH; the task waits for it deferred), then check the rows of the Parquet footers against the
table and write ``_manifest.json`` (files, rows, bytes, SHA-256 streamed) last: a reader that sees the
manifest sees a complete month. Then the next month."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dpc_elt.backends.redshift import s3
from dpc_elt.backends.redshift.data_api import DIALECT, DataApi, render_literals, sql_batch, statement_name
from dpc_elt.core import settings, sqlfiles
from dpc_elt.core.manifest import MANIFEST_NAME, write_export_manifest
from dpc_elt.core.params import validate_yyyymm

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

log = logging.getLogger(__name__)

STEP = "export_parquet"


def export_table() -> str:
    """The one table a month folder holds: UNLOAD … CLEANPATH owns the folder, so a second exported
    table would need its own prefix."""
    if len(settings.EXPORT_TABLES) != 1:
        raise ValueError("the production export writes exactly one table per month folder")
    return settings.EXPORT_TABLES[0]


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


def submit_month(api: DataApi, fs: AbstractFileSystem, yyyymm: str) -> str:
    """Clear the month's folder, then submit its UNLOAD (not waited for); the statement id."""
    validate_yyyymm(yyyymm)  # before it names the prefix to delete and enters UNLOAD's query literal
    prefix = api.where.processed.join(f"yyyymm={yyyymm}")
    if fs.exists(prefix.path):
        fs.rm(prefix.path, recursive=True)
    literals = {
        "unload_query": unload_query(export_table(), yyyymm),
        "unload_target": f"{api.where.processed}/",
        "iam_role_arn": api.where.iam_role_arn,
    }
    unload = sql_batch("export_parquet/unload_month", literals)
    return api.submit(unload, {}, single=True, name=statement_name(STEP, yyyymm))


def finish_month(api: DataApi, fs: AbstractFileSystem, yyyymm: str) -> dict[str, Any]:
    """The UNLOAD finished: every part's rows, bytes and SHA-256; their rows equal to the table's rows
    of the month (a quick count); then ``_manifest.json``. The month's entry of the step's result."""

    table = export_table()
    prefix = api.where.processed.join(f"yyyymm={validate_yyyymm(yyyymm)}")
    files = describe_parts(fs, prefix, f"{settings.MART_SCHEMA}.{table}")
    count = sql_batch("shared/count_month", schema=settings.MART_SCHEMA, table=table)
    expected = int(api.records(api.run(count, {"yyyymm": yyyymm}, single=True))[0][0])
    exported = sum(f["rows"] for f in files)
    if exported != expected:
        raise RuntimeError(f"{prefix}: Parquet files hold {exported} rows, {table} has {expected}")
    month = write_export_manifest(fs, prefix.join(MANIFEST_NAME).path, yyyymm, files)
    log.info("exported %s: %d files, %d rows", prefix, len(files), exported)
    return {**month, "uri": str(prefix)}


def describe_parts(fs: AbstractFileSystem, prefix: s3.S3Uri, table: str) -> list[dict[str, Any]]:
    """Every object UNLOAD wrote under ``prefix``: name, rows (Parquet footer), bytes, SHA-256."""
    fs.invalidate_cache(prefix.path)
    files = []
    for key in sorted(fs.find(prefix.path)):
        uri = s3.S3Uri.parse(f"s3://{key}")
        if uri.name == MANIFEST_NAME:
            continue
        sha256, size = s3.sha256_of(fs, uri)
        name = key[len(prefix.path) + 1 :]
        files.append({"table": table, "path": name, "rows": s3.parquet_rows(fs, uri), "bytes": size, "sha256": sha256})
    return files
