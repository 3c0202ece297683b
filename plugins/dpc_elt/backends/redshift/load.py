"""copy_raw on Redshift: stage the month on S3, then replace it in every raw table in ONE transaction.

1. :func:`stage_month` turns every listed file (cp932) into staged UTF-8 rows under ``staging/yyyymm=<M>/``,
   every line checked, and writes one COPY manifest per file type. A month of ``pieces.PARALLEL_FROM_BYTES``
   or more is staged on every core (:mod:`.pieces`: line-aligned pieces, each its own staged object, the
   validated version pinned by ETag); a smaller month file by file in the task (``s3.stage_to_s3``: one
   streamed read, multipart upload). Both write the same rows — the lineage
   columns with the line's number in the hospital's file — and both refuse a bad line or a repeated y1
   case block with the same error, here, before any SQL.
2. :func:`load_batch` is one Data API ``BatchExecuteStatement`` for all three file types: per type,
   create the raw table if missing, ``DELETE`` the month (bound ``:yyyymm``), ``COPY`` the staged
   objects (no COPY for a type without rows: its month ends empty). Redshift runs the statements of a
   batch as one transaction: if any statement fails — the third COPY as much as the first — the whole
   batch rolls back and every raw table keeps the month it had. (Three batches, one per type, as
   before, left y1 and ef_in replaced when the D load failed.) COPY runs with ``STATUPDATE ON``: the
   statistics of each loaded table are refreshed at the end of its COPY, inside the same transaction.
   A COPY manifest of many staged objects is how Redshift loads them in parallel, spread over the slices.
3. :func:`check_loaded` (batch finished) compares the rows each COPY loaded with the records staged;
   :func:`explain_failure` (batch failed) reads the failed COPY's first row of ``SYS_LOAD_ERROR_DETAIL``
   and raises the value-free ``RawFileError`` (file, line, column, reason) — never the rejected value.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dpc_elt.backends.redshift import pieces, s3
from dpc_elt.backends.redshift.data_api import (
    FAILED,
    LOAD_ERRORS,
    MAX_BATCH_STATEMENTS,
    Batch,
    DataApi,
    RedshiftStatementError,
    Target,
    failed_position,
    joined,
    sql_batch,
    statement_name,
)
from dpc_elt.core import formats, settings
from dpc_elt.core.errors import RawFileError
from dpc_elt.core.params import validate_yyyymm
from dpc_elt.core.sqlfiles import ReplacedRows, month_or_facility

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from dpc_elt.core.manifest import ManifestFile, ValidatedManifest

log = logging.getLogger(__name__)

STEP = "copy_raw"
_COLUMN = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def stage_month(
    fs: AbstractFileSystem, where: Target, yyyymm: str, manifest: ValidatedManifest, *, workers: int | None = None
) -> dict[str, Any]:
    """Every listed file, cp932 → UTF-8 with every line checked, into staged objects under
    ``staging/yyyymm=<M>/``; then one COPY manifest per file type listing every staged object with rows.
    The month's staging prefix is emptied first, so only this delivery can be loaded. ``workers``: the
    processes a month staged in pieces uses (default ``pieces.worker_count()``). Returns names, counts
    and URIs only."""
    validate_yyyymm(yyyymm)
    raw_month = where.raw.join(f"yyyymm={yyyymm}")
    staging_month = where.staging.join(f"yyyymm={yyyymm}")
    fs.invalidate_cache(staging_month.path)  # objects the workers PUT last time are not in s3fs' listings
    if fs.exists(staging_month.path):
        fs.rm(staging_month.path, recursive=True)
    listed = sorted(manifest.files, key=lambda f: (formats.FILE_TYPES.index(f.file_type), f.path))
    if sum(f.bytes for f in listed) >= pieces.PARALLEL_FROM_BYTES:
        access = pieces.s3_access(where.aws_conn_id)
        workers = pieces.worker_count() if workers is None else workers
        objects = pieces.stage_in_pieces(fs, access, listed, raw_month, staging_month, yyyymm, workers=workers)
    else:
        objects = _stage_file_by_file(fs, listed, raw_month, staging_month, yyyymm)
    staged = [staged_object.to_dict() for staged_object in objects]
    copy_manifests: dict[str, str] = {}
    for file_type in formats.FILE_TYPES:
        uris = [f["staged_uri"] for f in staged if f["file_type"] == file_type and f["records"] > 0]
        if uris:
            manifest_uri = staging_month.join(f"_copy_{file_type}.manifest")
            s3.write_copy_manifest(fs, manifest_uri, uris)
            copy_manifests[file_type] = str(manifest_uri)
    return {"yyyymm": yyyymm, "files": staged, "copy_manifests": copy_manifests}


def _stage_file_by_file(
    fs: AbstractFileSystem, listed: list[ManifestFile], raw_month: s3.S3Uri, staging_month: s3.S3Uri, yyyymm: str
) -> list[s3.StagedObject]:
    """Each file in turn, in this process: one streamed read, checked and transcoded, one staged object."""
    duplicates = s3.Y1DuplicateCheck()
    objects = []
    for file in listed:
        staged = s3.stage_to_s3(
            fs,
            raw_month.join(file.path),
            staging_month.join(f"{file.path}.tsv"),
            file_type=file.file_type,
            yyyymm=yyyymm,
            expected_sha256=file.sha256,
            inspect=duplicates.for_file(file.path) if file.file_type == formats.Y1.file_type else None,
        )
        log.info("staged %s: %d records, %d bytes UTF-8", file.path, staged.records, staged.staged_bytes)
        objects.append(staged)
    return objects


def copy_statements(
    file_type: str, copy_manifest_uri: str | None, iam_role_arn: str, replaced: ReplacedRows | None = None
) -> tuple[Batch, bool]:
    """One file type's part of the load batch: create the raw table if missing, DELETE the month (or
    ``replaced``: one facility's rows of it), COPY the staged objects (the COPY only when the delivery
    has rows of this type). Whether it COPYs."""
    layout = formats.LAYOUTS[file_type]
    identifiers = {"schema": settings.RAW_SCHEMA, "table": layout.raw_table}
    batch = sql_batch("copy_raw/create_raw_table", **identifiers, columns=layout.columns)
    batch += sql_batch(replaced.delete_sql if replaced else "shared/delete_month", **identifiers)
    if copy_manifest_uri is None:
        return batch, False
    literals = {"copy_manifest_uri": str(s3.S3Uri.parse(copy_manifest_uri)), "iam_role_arn": iam_role_arn}
    columns = formats.LINEAGE_COLUMNS + layout.columns
    return batch + sql_batch("copy_raw/copy_staged_files", literals, **identifiers, columns=columns), True


def load_batch(
    staged: dict[str, Any], where: Target, replaced: ReplacedRows | None = None
) -> tuple[Batch, list[dict[str, Any]]]:
    """The month's one batch (one transaction) for all three file types, and per COPY its 1-based
    position in the batch and the records staged for it."""
    parts, copies = [], []
    position = 0
    for file_type in formats.FILE_TYPES:
        manifest_uri = staged["copy_manifests"].get(file_type)
        part, with_copy = copy_statements(file_type, manifest_uri, where.iam_role_arn, replaced)
        parts.append(part)
        position += len(part.statements)
        if with_copy:
            rows = sum(f["records"] for f in staged["files"] if f["file_type"] == file_type)
            copies.append({"file_type": file_type, "position": position, "rows": rows})
    batch = joined(parts)
    if len(batch.statements) > MAX_BATCH_STATEMENTS:
        raise ValueError(f"copy_raw needs {len(batch.statements)} statements; a batch holds {MAX_BATCH_STATEMENTS}")
    return batch, copies


def submit(api: DataApi, fs: AbstractFileSystem, yyyymm: str, manifest: ValidatedManifest) -> dict[str, Any]:
    """Stage the month (a one-facility manifest: that facility's files), then submit its one load batch,
    which replaces the month (or that facility's rows of it); the Pending state (ids, names, counts)."""
    replaced = month_or_facility(yyyymm, manifest.facility_cd)
    staged = stage_month(fs, api.where, yyyymm, manifest)
    batch, copies = load_batch(staged, api.where, replaced)
    statement_id = api.submit(batch, replaced.values, name=statement_name(STEP, yyyymm))
    files = [
        {
            "file_type": f["file_type"],
            "source_file": f["source_file"],
            "staged_name": s3.S3Uri.parse(f["staged_uri"]).name,
            "first_line_no": f["first_line_no"],
        }
        for f in staged["files"]
    ]
    return {
        "step": STEP,
        "statement_id": statement_id,
        "yyyymm": yyyymm,
        "statements": len(batch.statements),
        "copies": copies,
        "files": files,
    }


def check_loaded(state: dict[str, Any], described: dict[str, Any]) -> dict[str, int]:
    """The batch finished: rows per file type, each COPY's loaded rows equal to the records staged
    (COPY with MAXERROR 0 loads all or fails). A file type without a COPY has no rows of the month."""
    subs = described.get("SubStatements") or []
    counts = dict.fromkeys(formats.FILE_TYPES, 0)
    for copy in state["copies"]:
        loaded = int(subs[copy["position"] - 1].get("ResultRows", -1)) if len(subs) >= copy["position"] else -1
        if loaded < 0:  # the Data API reported no count; MAXERROR 0 still held
            log.warning("copy_raw: the Data API reported no row count for the COPY of %s", copy["file_type"])
            loaded = copy["rows"]
        if loaded != copy["rows"]:
            raise RedshiftStatementError(
                f"copy_raw: COPY of {copy['file_type']} loaded {loaded} rows, {copy['rows']} were staged"
            )
        counts[copy["file_type"]] = loaded
    log.info("copy_raw %s: %s rows loaded (statement %s)", state["yyyymm"], counts, state["statement_id"])
    return counts


def explain_failure(api: DataApi, state: dict[str, Any], described: dict[str, Any]) -> RawFileError | None:
    """The failed batch's reason if a COPY rejected a line: the first SYS_LOAD_ERROR_DETAIL row of that
    COPY as a value-free RawFileError (source file, source line, column, load error code), else None."""
    position, _count, failed = failed_position(described)
    copy = next((c for c in state["copies"] if c["position"] == position), None)
    if copy is None or failed.get("Status") != FAILED:
        return None
    staging_month = api.where.staging.join(f"yyyymm={validate_yyyymm(state['yyyymm'])}")
    created = failed.get("CreatedAt") or described.get("CreatedAt") or datetime.now(UTC)
    values = {
        "query_id": str(int(failed.get("RedshiftQueryId") or -1)),
        "staged_prefix": f"{staging_month}/%",
        "since": created.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    lookup = api.run(
        sql_batch("copy_raw/select_load_errors"),
        values,
        single=True,
        name=statement_name("copy_raw.load_errors", state["yyyymm"]),
    )
    rows = api.records(lookup)
    if not rows:
        return None
    file_name, staged_line, column, code = rows[0]
    staged_name = str(file_name).strip().rsplit("/", 1)[-1]
    source = next((f for f in state["files"] if f["staged_name"] == staged_name), None)
    source_file = source["source_file"] if source else staged_name.removesuffix(".tsv")
    line = int(staged_line) + (source["first_line_no"] - 1 if source else 0) if staged_line else None
    column = str(column or "").strip()
    column = column if _COLUMN.fullmatch(column) else "?"
    code = int(code) if code is not None else 0
    reason = LOAD_ERRORS.get(code, "rejected")
    return RawFileError(
        source_file, f"COPY rejected the line: {reason}", f"column {column}, load error {code}", line=line
    )
