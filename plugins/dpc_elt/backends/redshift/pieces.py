"""copy_raw's staging on every core of the worker: each S3 source cut into line-aligned pieces, each piece
checked and transcoded by a worker process and written as its own staged object; one COPY per file type
then loads all of a type's pieces in parallel across the slices (see :mod:`.load`).

How a month is staged (:func:`stage_in_pieces`):

1. **One streamed read of each source in the task** (a few sources at a time, one thread each): a plain
   GET computes the file's SHA-256, counts its line feeds and cuts it into line-aligned pieces of about
   ``PIECE_BYTES`` (``rawfile.PieceCutter``: the cuts of the embedded loader's ``piece_bounds``), each
   with the number of its first line. The response's ETag names the version this read saw.
2. **Each piece in a worker process** as soon as the read has passed its end (forkserver, one worker per
   usable core, :func:`usable_cpus`): a ranged GET with ``IfMatch=<that ETag>``, then
   ``rawfile.stage_piece`` — every rule production checks: NUL, CR, control characters, valid and assigned
   cp932, UTF-8 text, BOM, header, line length, field counts, dates, DPC codes — rows with the lineage
   columns and the file's own line numbers, then one PUT of the piece's rows as its own object. y1
   pieces also hand back the keys of the duplicate case block rule.
3. **The month in the task**: every source's SHA-256 must be the validated manifest's, and no y1 item
   may repeat for a case across the month's y1 files. Only then are the COPY manifests written.

Line numbers are exact without any SQL: the one streamed read that the SHA-256 needs anyway also counts
the lines before each cut, so a worker is told its piece's first line and writes the very ``line_no`` the
line-by-line path writes (the pieces of a file together hold exactly its rows). Numbering lines within a
piece and adding each piece's offset in the warehouse — COPY into a temporary table, then INSERT … SELECT
joined to a table of offsets — would make Redshift write every row twice and lengthen the load batch;
here the batch is the one it was, its COPYs just read more files.

The version is pinned, because a piece cannot hash the whole file and the object may be replaced at any
time (between validate_manifest and copy_raw, or during copy_raw): the task's read hashes the version it
gets, and ``IfMatch`` (S3 answers 412 Precondition Failed for any other ETag) makes every piece read that
same version or fail. So a month is staged only from the bytes whose SHA-256 the manifest validated.
A 412 refuses the month with ``RULE_SHA_CHANGED``. (Recording the ETag at validation would spare the
second read of each source, but the validated manifest does not carry it, and this read also yields the
line counts the pieces need.)

Errors are exactly the line-by-line path's. Whatever is refused — a piece with a broken rule, a hash that
is not the manifest's, a repeated y1 item — the month's staged objects are removed, no COPY manifest is
written and nothing reaches the warehouse; then the files are checked again with ``rawfile.stage_raw_file``
in staging order, from the first file refused (from the first y1 file when a y1 file is refused: the
duplicate check carries across them; files before it passed and carry nothing over), so the message
(file, line, rule) is the one a one-file-at-a-time load gives, however the files were cut.

Credentials: a worker process cannot look up the Airflow connection. The task resolves it once
(:func:`s3_access`: the connection's credentials frozen, its region and endpoint) and hands it to each
worker as the worker starts; :class:`S3Access` keeps its secrets out of every repr and log line.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpc_elt.backends.redshift import s3
from dpc_elt.backends.redshift.s3 import S3Uri, StagedObject
from dpc_elt.core import formats, rawfile
from dpc_elt.core.errors import RawFileError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from dpc_elt.core.manifest import ManifestFile

log = logging.getLogger(__name__)

PIECE_BYTES = rawfile.PIECE_BYTES
# Below this many bytes a month is staged file by file in the task (s3.stage_to_s3): starting workers
# and reading every source twice would cost more than the cores save.
PARALLEL_FROM_BYTES = 2 * PIECE_BYTES
SCAN_BLOCK_BYTES = 8 * 1024 * 1024  # the task's streamed read of a source, one block at a time
PRECONDITION_FAILED = "PreconditionFailed"  # S3's error code for a GET whose IfMatch ETag is not the object's
CGROUP_ROOT = Path("/sys/fs/cgroup")


# ------------------------------------------------------------------------------------ where it runs


@dataclass(frozen=True)
class S3Access:
    """What a worker process needs to reach S3 as the task does: the Airflow connection's credentials,
    frozen when copy_raw started, its region and its endpoint (moto or MinIO locally; none on AWS). The
    secrets are left out of the repr, so they never reach a log line or a traceback."""

    region: str | None
    endpoint_url: str | None
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def client(self) -> Any:
        """A boto3 S3 client with these credentials (thread-safe: the task's reads share one)."""
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            region_name=self.region,
        )
        config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=16)
        return session.client("s3", endpoint_url=self.endpoint_url, config=config)


def s3_access(aws_conn_id: str | None) -> S3Access:
    """The Airflow AWS connection resolved in the task (the provider's S3Hook: login and password, a role
    to assume, or the worker's own role on MWAA): credentials frozen now, region, S3 endpoint. Frozen
    credentials from a role last as long as its session (an hour at least by default), far longer than a
    month's staging; a worker that outlives them fails on an expired token and the task is retried."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=aws_conn_id)
    session = hook.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError(f"copy_raw: the AWS connection {aws_conn_id!r} gives no credentials")
    frozen = credentials.get_frozen_credentials()
    return S3Access(
        region=session.region_name or hook.region_name,
        endpoint_url=hook.conn_config.get_service_endpoint_url(service_name="s3"),
        access_key_id=frozen.access_key,
        secret_access_key=frozen.secret_key,
        session_token=frozen.token,
    )


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> int | None:
    """The CPUs a container may use by its cgroup quota (v2 ``cpu.max``, else v1 ``cpu.cfs_quota_us``),
    rounded up; None when there is no quota."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else math.ceil(int(quota) / int(period))
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return math.ceil(quota_us / period_us) if quota_us > 0 and period_us > 0 else None


def usable_cpus() -> int:
    """The cores this task may keep busy: its CPU affinity, capped by a container's CPU quota (MWAA runs
    its workers in containers, whose vCPU limit is a cgroup quota that the affinity does not show)."""
    cpus = len(os.sched_getaffinity(0))
    limit = cgroup_cpu_limit()
    return max(1, min(cpus, limit) if limit else cpus)


def worker_count() -> int:
    """Worker processes for the pieces: one per usable core, two on a single core (measured on one core:
    a second worker transcodes while the first waits on S3, 14.8 s against 16.1 s for a 542 MB month)."""
    return max(2, usable_cpus())


# ------------------------------------------------------------------------------------ in the workers

_worker_s3: Any = None  # the worker process's S3 client, made once by _start_worker


def _start_worker(access: S3Access) -> None:
    """Initializer of a piece worker: glibc keeps freed buffers for the next piece (as the embedded
    loader's workers), and one S3 client serves every piece."""
    global _worker_s3
    rawfile.keep_freed_buffers_in_worker()
    _worker_s3 = access.client()


@dataclass(frozen=True)
class PieceJob:
    """One piece for a worker: where it is and which version, its lines, where its rows go."""

    source: S3Uri
    etag: str  # the version the task's read hashed: the piece is read with IfMatch
    span: rawfile.PieceSpan
    file_type: str
    yyyymm: str
    target: S3Uri


@dataclass(frozen=True)
class PieceOutcome:
    """What a worker reports of one piece: counts and keys only, never a field value."""

    records: int = 0
    first_record_line: int = 0
    staged_bytes: int = 0
    broken: bool = False  # a rule is broken in the piece (the task names it line by line)
    changed: bool = False  # the object is no longer the version the task's read hashed
    y1_keys: list[str] = field(default_factory=list)  # the duplicate check's keys, in line order (y1 only)
    cpu_seconds: float = 0.0


class _StagedRows:
    """Where ``rawfile.stage_piece`` writes: the piece's rows as UTF-8 in memory, PUT whole once every line
    passed (so a broken piece never becomes an object); for y1 also each row's duplicate-check key."""

    def __init__(self, keys: s3.Y1DuplicateCheck | None) -> None:
        self.buffer = BytesIO()
        self.key_check = keys
        self.y1_keys: list[str] = []

    def write(self, text: str) -> int:
        self.buffer.write(text.encode("utf-8"))
        if self.key_check is not None:
            self.y1_keys += self.key_check.keys(text)
        return len(text)


def stage_piece(job: PieceJob) -> PieceOutcome:
    """Run in a worker: read the piece (that version only), check and transcode every line, PUT the rows."""
    from botocore.exceptions import ClientError

    started = time.process_time()
    span = job.span
    try:
        response = _worker_s3.get_object(
            Bucket=job.source.bucket, Key=job.source.key, Range=f"bytes={span.start}-{span.end - 1}", IfMatch=job.etag
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == PRECONDITION_FAILED:
            return PieceOutcome(changed=True, cpu_seconds=time.process_time() - started)
        raise
    rows = _StagedRows(s3.Y1DuplicateCheck() if job.file_type == formats.Y1.file_type else None)
    body = response["Body"]
    try:
        staged = rawfile.stage_piece(
            body,
            rows,  # type: ignore[arg-type]  # stage_piece only calls write()
            file_type=job.file_type,
            source_file=job.source.name,
            yyyymm=job.yyyymm,
            first_line_no=span.first_line_no,
        )
    except RawFileError:
        return PieceOutcome(broken=True, cpu_seconds=time.process_time() - started)
    finally:
        body.close()
    staged_bytes = rows.buffer.tell()
    if staged.records:
        rows.buffer.seek(0)
        _worker_s3.put_object(Bucket=job.target.bucket, Key=job.target.key, Body=rows.buffer)
    return PieceOutcome(
        records=staged.records,
        first_record_line=staged.first_record_line,
        staged_bytes=staged_bytes,
        y1_keys=rows.y1_keys,
        cpu_seconds=time.process_time() - started,
    )


# ------------------------------------------------------------------------------------ in the task


@dataclass
class _Piece:
    span: rawfile.PieceSpan
    target: S3Uri
    outcome: Future[PieceOutcome]


@dataclass
class _Source:
    """One listed file on its way through the pieces."""

    listed: ManifestFile
    uri: S3Uri
    etag: str = ""
    sha256: str = ""
    pieces: list[_Piece] = field(default_factory=list)

    @property
    def is_y1(self) -> bool:
        return self.listed.file_type == formats.Y1.file_type


class _Month:
    """One month's staging in pieces (see the module docstring)."""

    def __init__(self, listed: list[ManifestFile], raw_month: S3Uri, staging_month: S3Uri, yyyymm: str) -> None:
        self.sources = [_Source(file, raw_month.join(file.path)) for file in listed]
        self.staging_month = staging_month
        self.yyyymm = yyyymm
        self.piece_bytes = PIECE_BYTES  # read at run time: tests cut small pieces
        self.stop = threading.Event()

    def run(self, access: S3Access, workers: int) -> None:
        """Read every source once, stage every piece; returns when all are done (or raises)."""
        client = access.client()
        # Each worker starts with the S3 access (its own client); boto3 is imported once, in the server.
        with rawfile.piece_workers(
            workers, preload=[__name__, "boto3"], initializer=_start_worker, initargs=(access,)
        ) as pool:
            readers = min(len(self.sources), max(2, workers))
            with ThreadPoolExecutor(max_workers=readers, thread_name_prefix="copy_raw_read") as threads:
                reads = [threads.submit(self._read, client, pool, source) for source in self.sources]
                try:
                    for read in reads:
                        read.result()
                except BaseException:
                    self.stop.set()  # the other reads end at their next block
                    raise
            for source in self.sources:
                for piece in source.pieces:
                    piece.outcome.result()

    def _read(self, client: Any, pool: ProcessPoolExecutor, source: _Source) -> None:
        """The task's one read of a source: SHA-256, line feeds, cuts; each piece handed to a worker as
        soon as the read has passed its end."""
        response = client.get_object(Bucket=source.uri.bucket, Key=source.uri.key)
        source.etag = response["ETag"]
        digest, cutter = hashlib.sha256(), rawfile.PieceCutter(self.piece_bytes)
        body = response["Body"]
        try:
            while chunk := body.read(SCAN_BLOCK_BYTES):
                if self.stop.is_set():
                    return
                digest.update(chunk)  # releases the GIL: the other reads go on meanwhile
                for span in cutter.feed(chunk):
                    self._submit(pool, source, span)
        finally:
            body.close()
        for span in cutter.finish():
            self._submit(pool, source, span)
        source.sha256 = digest.hexdigest()

    def _submit(self, pool: ProcessPoolExecutor, source: _Source, span: rawfile.PieceSpan) -> None:
        target = self.staging_month.join(f"{source.uri.name}.{len(source.pieces):05d}.tsv")
        job = PieceJob(source.uri, source.etag, span, source.listed.file_type, self.yyyymm, target)
        source.pieces.append(_Piece(span, target, pool.submit(stage_piece, job)))

    def refusal(self, fs: AbstractFileSystem) -> Exception | None:
        """None when every piece passed, every hash is the manifest's and no y1 item repeats; else the
        error the line-by-line path gives (the first refused file in staging order decides)."""
        duplicates = s3.Y1DuplicateCheck()
        for index, source in enumerate(self.sources):
            outcomes = [piece.outcome.result() for piece in source.pieces]
            if any(outcome.changed for outcome in outcomes):
                return RawFileError(source.listed.path, rawfile.RULE_SHA_CHANGED)
            hash_differs = source.sha256 != source.listed.sha256.lower()
            broken = any(outcome.broken for outcome in outcomes)
            repeated = source.is_y1 and not all(duplicates.add(outcome.y1_keys) for outcome in outcomes)
            if hash_differs or broken or repeated:
                first_y1 = next(i for i, s in enumerate(self.sources) if s.is_y1) if source.is_y1 else index
                log.info("copy_raw: %s refused in pieces; checking line by line to name the error", source.listed.path)
                error = self._first_error(fs, self.sources[first_y1:])
                if error is not None:
                    return error
                if hash_differs:  # its bytes changed while being read, and changed back
                    return RawFileError(source.listed.path, rawfile.RULE_SHA_CHANGED)
                return RuntimeError(f"copy_raw: {source.listed.path} was refused in pieces, but breaks no rule")
        return None

    def _first_error(self, fs: AbstractFileSystem, sources: list[_Source]) -> RawFileError | None:
        """The line-by-line path's error over ``sources`` in staging order, or None."""
        fs.invalidate_cache(sources[0].uri.path.rsplit("/", 1)[0])  # s3fs may hold an older size
        duplicates = s3.Y1DuplicateCheck()
        for source in sources:
            try:
                s3.check_source(
                    fs,
                    source.uri,
                    file_type=source.listed.file_type,
                    yyyymm=self.yyyymm,
                    expected_sha256=source.listed.sha256,
                    inspect=duplicates.for_file(source.listed.path) if source.is_y1 else None,
                )
            except RawFileError as error:
                return error
        return None

    def staged_objects(self) -> list[StagedObject]:
        return [
            StagedObject(
                file_type=source.listed.file_type,
                source_file=source.listed.path,
                staged_uri=str(piece.target),
                records=outcome.records,
                sha256=source.sha256,
                bytes=piece.span.end - piece.span.start,
                staged_bytes=outcome.staged_bytes,
                first_line_no=outcome.first_record_line or piece.span.first_line_no,
            )
            for source in self.sources
            for piece in source.pieces
            for outcome in (piece.outcome.result(),)
        ]

    def worker_cpu_seconds(self) -> float:
        return sum(piece.outcome.result().cpu_seconds for source in self.sources for piece in source.pieces)


def remove_staged(client: Any, staging_month: S3Uri) -> None:
    """Delete every object under the month's staging prefix (what the workers had PUT)."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=staging_month.bucket, Prefix=f"{staging_month.key}/"):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:  # a page holds at most 1,000 keys, as many as one DeleteObjects takes
            client.delete_objects(Bucket=staging_month.bucket, Delete={"Objects": keys, "Quiet": True})


def stage_in_pieces(
    fs: AbstractFileSystem,
    access: S3Access,
    listed: list[ManifestFile],
    raw_month: S3Uri,
    staging_month: S3Uri,
    yyyymm: str,
    *,
    workers: int,
) -> list[StagedObject]:
    """Stage the listed files (in staging order) in pieces on ``workers`` processes; one staged object per
    piece with rows. Raises the line-by-line path's RawFileError for a refused month, after removing
    every object staged for it."""
    month = _Month(listed, raw_month, staging_month, yyyymm)
    started = time.monotonic()
    try:
        month.run(access, workers)
        refused = month.refusal(fs)
        if refused is not None:
            raise refused
    except BaseException:
        remove_staged(access.client(), staging_month)
        raise
    objects = month.staged_objects()
    log.info(
        "copy_raw staged %d files in %d pieces, %d MB, in %.1f s on %d workers (%.1f CPU s in the workers)",
        len(month.sources),
        len(objects),
        sum(source.listed.bytes for source in month.sources) // 1_000_000,
        time.monotonic() - started,
        workers,
        month.worker_cpu_seconds(),
    )
    return objects
