"""S3 for the production backend (``dpc_elt.backends.redshift``): locations, streaming transcoding into
the staging prefix, streamed hashes and Parquet row counts.

All S3 I/O in the task goes through one fsspec filesystem (s3fs) that the amazon provider builds from the
Airflow AWS connection (``airflow.providers.amazon.aws.fs.s3.get_fs``), so ``dpc_elt.core.manifest.validate_month``
and ``dpc_elt.core.rawfile.stage_raw_file`` run on S3 unchanged (a month staged in pieces on every core
reads and writes through boto3 clients instead, see :mod:`.pieces`). Memory stays bounded whatever the file
size: reads are ranged GETs of ``READ_BLOCK_BYTES``, writes are multipart uploads of ``PART_BYTES``
parts, hashes are computed chunk by chunk. Nothing here logs or returns a field value.

Bucket names and keys that reach a COPY or UNLOAD statement (which cannot bind them) are checked
against the allow-list patterns below when a location is parsed: see ``data_api.render_literals``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from dpc_elt.core import formats
from dpc_elt.core.errors import RawFileError
from dpc_elt.core.rawfile import RULE_DUPLICATE_Y1

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsspec import AbstractFileSystem

READ_BLOCK_BYTES = 8 * 1024 * 1024
# Multipart part size of staged uploads: the most a transcoding holds in memory besides one read
# block. S3 allows 10,000 parts, so 16 MiB parts cover staged files up to 156 GiB.
PART_BYTES = 16 * 1024 * 1024
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum part size (all parts but the last)
HASH_CHUNK_BYTES = 8 * 1024 * 1024

# S3 bucket naming rules (lower case, digits, dots, hyphens; 3-63 characters), no "..".
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# Keys we write or read: a conservative subset of S3's safe characters - never a quote, a backslash,
# a space or a control character, so a key can be written into a SQL string literal unchanged.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*")


@dataclass(frozen=True)
class S3Uri:
    """``s3://<bucket>/<key>``, validated: safe to write into a COPY or UNLOAD string literal."""

    bucket: str
    key: str = ""

    def __post_init__(self) -> None:
        if not BUCKET_PATTERN.fullmatch(self.bucket) or ".." in self.bucket:
            raise ValueError("S3 bucket name breaks the S3 naming rules (lower case, digits, '.', '-'; 3-63)")
        if self.key and not KEY_PATTERN.fullmatch(self.key):
            raise ValueError("S3 key may hold only letters, digits and _ . = - between single slashes")

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise ValueError("S3 location must be written s3://<bucket>/<prefix>")
        bucket, _, key = uri[len("s3://") :].partition("/")
        return cls(bucket, key.rstrip("/"))

    def join(self, *parts: str) -> S3Uri:
        key = "/".join(p for p in (self.key, *parts) if p)
        return S3Uri(self.bucket, key)

    @property
    def path(self) -> str:
        """The s3fs path (no scheme)."""
        return f"{self.bucket}/{self.key}" if self.key else self.bucket

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"s3://{self.path}"


def filesystem(aws_conn_id: str | None) -> AbstractFileSystem:
    """s3fs for the Airflow AWS connection (credentials, region, endpoint from the connection)."""
    from airflow.providers.amazon.aws.fs.s3 import get_fs

    fs = get_fs(aws_conn_id or None)
    fs.default_block_size = READ_BLOCK_BYTES  # ranged GETs of this size; bounds read memory
    fs.fixed_upload_size = True  # multipart parts of exactly the block size asked for
    return fs


# ------------------------------------------------------------------------------------ transcoding


@dataclass(frozen=True)
class StagedObject:
    """A raw file, or one piece of it, transcoded to UTF-8 under the staging prefix: counts, names and
    hashes only."""

    file_type: str
    source_file: str
    staged_uri: str
    records: int
    sha256: str  # of the whole source file
    bytes: int  # of the source that this object holds (the whole file, or the piece)
    staged_bytes: int
    # The source line of the staged object's first line (2 when a header was skipped): turns a line
    # number that COPY reports in the staged object into the line of the hospital's file.
    first_line_no: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Utf8Sink:
    """The text side of ``stage_raw_file``: encodes each block to UTF-8 into a binary (multipart) file."""

    def __init__(self, binary: Any, inspect: Callable[[str], None] | None = None) -> None:
        self.binary = binary
        self.inspect = inspect
        self.bytes = 0
        self.first_line_no: int | None = None

    def write(self, text: str) -> int:
        if not text:
            return 0
        if self.first_line_no is None:
            self.first_line_no = int(text.split("\t", 3)[2])  # lineage: yyyymm, source_file, line_no
        if self.inspect is not None:
            self.inspect(text)
        data = text.encode("utf-8")
        self.binary.write(data)
        self.bytes += len(data)
        return len(text)


class Y1DuplicateCheck:
    """A y1 item listed twice for one case in one month (a duplicated case block) rejects the month.

    The embedded backend finds it in SQL after loading (``copy_raw/find_duplicate_y1_items.sql``);
    here the staged rows are checked while they stream (or, staged in pieces, their keys in staging
    order), so nothing is loaded. Keys (codes and dates, about 60 bytes a line) are kept for the
    month's y1 lines only.
    """

    KEY_COLUMNS = ("facility_cd", "patient_id", "admission_date", "admission_seq_no", "summary_no")
    KEY_COLUMNS += ("item_code", "item_seq")

    def __init__(self) -> None:
        offset = len(formats.LINEAGE_COLUMNS)
        self.positions = [offset + formats.Y1.columns.index(c) for c in self.KEY_COLUMNS]
        self.maxsplit = max(self.positions) + 1
        self.seen: set[str] = set()

    def _key(self, fields: list[str]) -> str:
        return "\t".join([fields[i] for i in self.positions])

    def keys(self, text: str) -> list[str]:
        """The key of every staged y1 row in ``text``, in order."""
        return [self._key(row.split("\t", self.maxsplit)) for row in text.splitlines()]

    def add(self, keys: list[str]) -> bool:
        """Take the next rows' keys in staging order; False as soon as one was seen before."""
        for key in keys:
            if key in self.seen:
                return False
            self.seen.add(key)
        return True

    def for_file(self, source_file: str) -> Callable[[str], None]:
        def inspect(text: str) -> None:
            for row in text.splitlines():
                fields = row.split("\t", self.maxsplit)
                key = self._key(fields)
                if key in self.seen:
                    raise RawFileError(source_file, RULE_DUPLICATE_Y1, line=int(fields[2]))
                self.seen.add(key)

        return inspect


def stage_to_s3(
    fs: AbstractFileSystem,
    source: S3Uri,
    target: S3Uri,
    *,
    file_type: str,
    yyyymm: str,
    expected_sha256: str,
    part_bytes: int = PART_BYTES,
    read_block_bytes: int = READ_BLOCK_BYTES,
    chunk_bytes: int | None = None,
    inspect: Callable[[str], None] | None = None,
) -> StagedObject:
    """Stream ``source`` (cp932) through ``rawfile.stage_raw_file`` into ``target`` (UTF-8 TSV).

    The upload is multipart in parts of ``part_bytes`` while the source streams in; it is completed
    only after every line passed and the SHA-256 matched the validated manifest. On any failure the
    multipart upload is aborted, so no staged object (and no partial one) is left to be loaded.
    Memory: one read block, one part (plus the copy being sent) and rawfile's per-chunk work.
    """
    from dpc_elt.core.rawfile import CHUNK_BYTES, stage_raw_file

    if part_bytes < MIN_PART_BYTES:
        raise ValueError(f"part_bytes must be at least {MIN_PART_BYTES} (S3 multipart minimum)")
    source_file = source.name
    with fs.open(source.path, "rb", block_size=read_block_bytes, cache_type="readahead") as src:
        dst = fs.open(target.path, "wb", block_size=part_bytes)
        sink = _Utf8Sink(dst, inspect)
        try:
            result = stage_raw_file(
                src,
                sink,  # type: ignore[arg-type]  # stage_raw_file only calls write()
                file_type=file_type,
                source_file=source_file,
                yyyymm=yyyymm,
                expected_sha256=expected_sha256,
                staged_path=str(target),
                chunk_bytes=chunk_bytes or CHUNK_BYTES,
            )
        except BaseException:
            dst.discard()  # aborts the multipart upload: nothing becomes visible
            dst.closed = True  # so that close() (or garbage collection) never completes it
            raise
        dst.close()  # completes the multipart upload (or one PUT for a small file)
    return StagedObject(
        file_type=file_type,
        source_file=source_file,
        staged_uri=str(target),
        records=result.records,
        sha256=result.sha256,
        bytes=result.bytes,
        staged_bytes=sink.bytes,
        first_line_no=sink.first_line_no or 1,
    )


def check_source(
    fs: AbstractFileSystem,
    source: S3Uri,
    *,
    file_type: str,
    yyyymm: str,
    expected_sha256: str,
    inspect: Callable[[str], None] | None = None,
) -> None:
    """Every line of ``source`` checked as :func:`stage_to_s3` checks it, nothing written: raises the
    RawFileError the line-by-line staging raises (a bad line, a repeated y1 item through ``inspect``,
    then a changed SHA-256), or returns."""
    from dpc_elt.core.rawfile import DiscardedRows, stage_raw_file

    with fs.open(source.path, "rb", block_size=READ_BLOCK_BYTES, cache_type="readahead") as src:
        stage_raw_file(
            src,
            DiscardedRows(inspect),  # type: ignore[arg-type]  # stage_raw_file only calls write()
            file_type=file_type,
            source_file=source.name,
            yyyymm=yyyymm,
            expected_sha256=expected_sha256,
        )


def write_copy_manifest(fs: AbstractFileSystem, target: S3Uri, staged_uris: list[str]) -> None:
    """A COPY manifest: exactly these objects, each mandatory (a missing one fails the COPY)."""
    entries = [{"url": uri, "mandatory": True} for uri in staged_uris]
    with fs.open(target.path, "w") as handle:
        json.dump({"entries": entries}, handle, indent=1)


# ----------------------------------------------------------------------------------- hashes, rows


def sha256_of(fs: AbstractFileSystem, uri: S3Uri) -> tuple[str, int]:
    """SHA-256 and size of one object, streamed in chunks."""
    digest = hashlib.sha256()
    size = 0
    with fs.open(uri.path, "rb", block_size=READ_BLOCK_BYTES, cache_type="none") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


PARQUET_MAGIC = b"PAR1"


def parquet_rows(fs: AbstractFileSystem, uri: S3Uri) -> int:
    """Rows of one Parquet object, from its footer only (two small ranged reads, no pyarrow)."""
    with fs.open(uri.path, "rb", block_size=64 * 1024, cache_type="none") as handle:
        size = handle.size
        if size < 12:
            raise ValueError(f"{uri.name}: not a Parquet file (too short)")
        handle.seek(size - 8)
        tail = handle.read(8)
        if tail[4:] != PARQUET_MAGIC:
            raise ValueError(f"{uri.name}: not a Parquet file (no PAR1 footer)")
        footer_length = int.from_bytes(tail[:4], "little")
        if footer_length > size - 12:
            raise ValueError(f"{uri.name}: Parquet footer length out of range")
        handle.seek(size - 8 - footer_length)
        footer = handle.read(footer_length)
    return footer_num_rows(footer)


class _Compact:
    """Just enough of Thrift's compact protocol to skip fields and read an i64."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def skip(self, kind: int, in_collection: bool = False) -> None:
        if kind in (1, 2):  # booleans: in the field header, or one byte inside a collection
            self.pos += 1 if in_collection else 0
        elif kind == 3:
            self.pos += 1
        elif kind in (4, 5, 6):
            self.varint()
        elif kind == 7:
            self.pos += 8
        elif kind == 8:
            length = self.varint()  # read first: "self.pos += self.varint()" would lose its bytes
            self.pos += length
        elif kind in (9, 10):
            header = self.byte()
            count = header >> 4
            if count == 15:
                count = self.varint()
            for _ in range(count):
                self.skip(header & 0x0F, in_collection=True)
        elif kind == 11:
            count = self.varint()
            if count:
                types = self.byte()
                for _ in range(count):
                    self.skip(types >> 4, in_collection=True)
                    self.skip(types & 0x0F, in_collection=True)
        elif kind == 12:
            self.struct_fields(lambda _field, field_kind: self.skip(field_kind))
        else:
            raise ValueError(f"unknown Thrift compact type {kind}")

    def struct_fields(self, visit: Callable[[int, int], Any]) -> Any:
        last = 0
        while True:
            header = self.byte()
            if header == 0:
                return None
            kind, delta = header & 0x0F, header >> 4
            field = last + delta if delta else self.zigzag()
            last = field
            found = visit(field, kind)
            if found is not None:
                return found


def footer_num_rows(footer: bytes) -> int:
    """``FileMetaData.num_rows`` (field 3, i64) of a Parquet footer."""
    reader = _Compact(footer)

    def visit(field: int, kind: int) -> int | None:
        if field == 3 and kind == 6:
            return reader.zigzag()
        reader.skip(kind)
        return None

    rows = reader.struct_fields(visit)
    if rows is None:
        raise ValueError("Parquet footer has no num_rows")
    return rows
