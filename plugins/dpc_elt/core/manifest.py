"""Validate one landed month against its ``_manifest.json`` (dpc-data-contract.md §2).

All or nothing: :func:`validate_month` either returns a :class:`ValidatedManifest` or raises a
:class:`~dpc_elt.errors.ManifestError` that names the file, the line where there is one, and the rule.
Messages never hold a field value (values may be patient data): JSON Schema failures name the JSON path
and the schema rule only.

Pure Python, importable without Airflow; jsonschema and fsspec are imported inside the functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from dpc_elt.core import formats, settings
from dpc_elt.core.errors import ManifestError
from dpc_elt.core.params import validate_facility_cd, validate_yyyymm

MANIFEST_NAME = "_manifest.json"  # the delivery's, and the name of the output manifest beside an export
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 1024 * 1024
CHUNK_BYTES = 8 * 1024 * 1024
SCAN_THREADS = max(2, len(os.sched_getaffinity(0)))
# A header line is short; a first line longer than this is not a header.
_MAX_HEADER_BYTES = 64 * 1024

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)

_JSON_REASONS = frozenset(
    {
        "Expecting value",
        "Expecting property name enclosed in double quotes",
        "Expecting ':' delimiter",
        "Expecting ',' delimiter",
        "Unterminated string starting at",
        "Invalid control character at",
        "Invalid \\escape",
        "Invalid \\uXXXX escape",
        "Extra data",
        "Illegal trailing comma before end of object",
        "Illegal trailing comma before end of array",
    }
)

# Rule texts (fixed, value-free). Schema failures read "<json path>: <schema rule>".
RULE_MANIFEST_MISSING = "manifest missing"
RULE_MANIFEST_NOT_FILE = "manifest is not a regular file"
RULE_MANIFEST_TOO_LARGE = f"manifest larger than {MAX_MANIFEST_BYTES} bytes"
RULE_INVALID_JSON = "invalid JSON"
RULE_MONTH_MISMATCH = "yyyymm differs from the run's month"
RULE_DUPLICATE_PATH = "path listed more than once"
RULE_NAME_FILE_TYPE = "file name does not match file_type"
RULE_NAME_FACILITY = "file name facility code differs from facility_cd"
RULE_NAME_MONTH = "file name month differs from yyyymm"
RULE_FILE_MISSING = "listed file missing"
RULE_NOT_REGULAR_FILE = "listed path is not a regular file"
RULE_SIZE = "size differs from manifest (bytes)"
RULE_SHA256 = "sha256 differs from manifest"
RULE_RECORDS = "record count differs from manifest (records)"
RULE_FACILITY_NOT_LISTED = "no file of the facility to reload is listed"
RULE_LINE_OTHER_FACILITY = "a line's facility_cd differs from the facility being reloaded"


@dataclass(frozen=True)
class ManifestFile:
    file_type: str
    facility_cd: str
    path: str
    sha256: str
    bytes: int
    records: int


@dataclass(frozen=True)
class ValidatedManifest:
    """A month that passed validation. Holds counts, names and hashes only (safe as XCom)."""

    yyyymm: str
    created_at: str
    files: tuple[ManifestFile, ...]
    unlisted: tuple[str, ...] = ()
    # SHA-256 of the delivery's _manifest.json bytes as validated: what the month's loaded-manifest
    # record keeps (dpc_elt.core.run_marker), so a repeated manifest event can be told from a change.
    manifest_sha256: str = ""
    # A one-facility reload: only this facility's files are in ``files``, and only its rows are replaced.
    facility_cd: str = ""

    @property
    def total_records(self) -> int:
        return sum(f.records for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "yyyymm": self.yyyymm,
            "created_at": self.created_at,
            "files": [asdict(f) for f in self.files],
            "unlisted": list(self.unlisted),
            "manifest_sha256": self.manifest_sha256,
            "facility_cd": self.facility_cd,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidatedManifest:
        return cls(
            yyyymm=str(data["yyyymm"]),
            created_at=str(data["created_at"]),
            files=tuple(
                ManifestFile(
                    file_type=str(f["file_type"]),
                    facility_cd=str(f["facility_cd"]),
                    path=str(f["path"]),
                    sha256=str(f["sha256"]),
                    bytes=int(f["bytes"]),
                    records=int(f["records"]),
                )
                for f in data["files"]
            ),
            unlisted=tuple(str(u) for u in data.get("unlisted", ())),
            manifest_sha256=str(data.get("manifest_sha256", "")),
            facility_cd=str(data.get("facility_cd", "")),
        )


class ParsedManifest(NamedTuple):
    """What :func:`parse_manifest` returns; unpacks as ``files, created_at``."""

    files: tuple[ManifestFile, ...]
    created_at: str


def month_uri(raw_root: str, yyyymm: str) -> str:
    """``<raw_root>/yyyymm=<YYYYMM>`` for a local path or any fsspec URI (``s3://b/raw``, ``memory://raw``)."""
    validate_yyyymm(yyyymm)
    if raw_root.endswith("://"):
        return f"{raw_root}yyyymm={yyyymm}"
    return f"{raw_root.rstrip('/')}/yyyymm={yyyymm}"


# --------------------------------------------------------------------------------------------- schema


def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True  # "type" reports non-strings
    if not _RFC3339.fullmatch(value):
        return False
    text = value.upper().replace("Z", "+00:00")
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    schema = json.loads(settings.MANIFEST_SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_rfc3339)
    return Draft202012Validator(schema, format_checker=checker)


def _json_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


def _schema_rule(error: Any) -> str:
    """A value-free text for one jsonschema error: built from the schema, never from the instance."""
    kw, expected = error.validator, error.validator_value
    if kw == "required":
        missing = [name for name in expected if isinstance(error.instance, dict) and name not in error.instance]
        return f"missing required property {', '.join(missing) or '(unknown)'}"
    if kw == "additionalProperties":
        return "additional property not allowed"
    if kw == "type":
        return f"must be of type {expected}"
    if kw == "const":
        return f"must be {json.dumps(expected)}"
    if kw == "enum":
        return f"must be one of {', '.join(map(str, expected))}"
    if kw == "pattern":
        return "does not match pattern"
    if kw == "not":
        return f"must not match: {expected.get('title', 'forbidden pattern')}"
    if kw == "format":
        return f"is not a valid {expected}"
    texts = {
        "minLength": "shorter than {} characters",
        "maxLength": "longer than {} characters",
        "minimum": "less than minimum {}",
        "maximum": "greater than maximum {}",
        "minItems": "fewer than {} items",
        "maxItems": "more than {} items",
    }
    if kw in texts:
        return texts[kw].format(expected)
    return f"breaks schema rule {kw}"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JsonRuleError("duplicate key in a JSON object")
        out[key] = value
    return out


def _no_constants(_name: str) -> Any:
    raise _JsonRuleError("NaN and Infinity are not JSON")


class _JsonRuleError(Exception):
    pass


def parse_manifest(text_or_bytes: str | bytes, *, source: str, yyyymm: str) -> ParsedManifest:
    """Parse and check one manifest's content; ``source`` names it in errors.

    Checks, in order: size cap, UTF-8, JSON syntax, the JSON Schema, ``yyyymm`` equal to the run's,
    each path listed once, each file name matching its file_type, facility_cd and month. Files on
    disk are not touched (see :func:`validate_month`).
    """
    validate_yyyymm(yyyymm)
    data = text_or_bytes.encode("utf-8") if isinstance(text_or_bytes, str) else bytes(text_or_bytes)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(source, RULE_MANIFEST_TOO_LARGE)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ManifestError(source, RULE_INVALID_JSON, "not UTF-8", line=line) from None
    text = text.removeprefix("\ufeff")
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        # Only known, value-free parser texts (the pure-Python parser may quote a character).
        reason = exc.msg if exc.msg in _JSON_REASONS else "syntax error"
        raise ManifestError(source, RULE_INVALID_JSON, f"column {exc.colno}: {reason}", line=exc.lineno) from None
    except _JsonRuleError as exc:
        raise ManifestError(source, RULE_INVALID_JSON, str(exc)) from None
    except (ValueError, RecursionError):
        raise ManifestError(source, RULE_INVALID_JSON, "number too long or nesting too deep") from None

    errors = sorted(_validator().iter_errors(doc), key=lambda e: ([str(p) for p in e.absolute_path], str(e.validator)))
    if errors:
        first = errors[0]
        more = f"{len(errors) - 1} more schema error(s)" if len(errors) > 1 else ""
        raise ManifestError(source, f"{_json_path(first.absolute_path)}: {_schema_rule(first)}", more)

    if doc["yyyymm"] != yyyymm:
        raise ManifestError(source, RULE_MONTH_MISMATCH, f"manifest {doc['yyyymm']}, run {yyyymm}")

    files: list[ManifestFile] = []
    seen: set[str] = set()
    for i, item in enumerate(doc["files"]):
        where = f"files[{i}].path"
        path = item["path"]
        if path in seen:
            raise ManifestError(source, f"{where}: {RULE_DUPLICATE_PATH}", path)
        seen.add(path)
        layout = formats.LAYOUTS[item["file_type"]]
        match = layout.name_pattern.fullmatch(path)
        if match is None:
            expected = f"{layout.name_prefix}_<facility_cd>_<YYMM>.txt"
            raise ManifestError(source, f"{where}: {RULE_NAME_FILE_TYPE}", f"{path}; expected {expected}")
        if match["facility_cd"] != item["facility_cd"]:
            raise ManifestError(source, f"{where}: {RULE_NAME_FACILITY}", path)
        if match["yymm"] != yyyymm[2:]:
            raise ManifestError(source, f"{where}: {RULE_NAME_MONTH}", f"{path}; expected YYMM {yyyymm[2:]}")
        files.append(
            ManifestFile(
                file_type=item["file_type"],
                facility_cd=item["facility_cd"],
                path=path,
                sha256=item["sha256"],
                bytes=int(item["bytes"]),
                records=int(item["records"]),
            )
        )
    return ParsedManifest(tuple(files), doc["created_at"])


# ------------------------------------------------------------------------------------------ files


def _basename(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


class _OtherFacilityLines:
    """Finds the first line whose first field (施設コード in every layout) is a facility code other than
    ``facility_cd``. A first field that is no 9-digit code (a header, a broken line) is left to copy_raw's
    rules. Fed the file's bytes in order; lines are split across chunks."""

    def __init__(self, facility_cd: str) -> None:
        self.pattern = re.compile(rb"^(?!" + facility_cd.encode() + rb"\t)[0-9]{9}\t", re.MULTILINE)
        self.pending = b""  # the start of a line whose line feed has not been read yet
        self.lines_before = 0  # complete lines before ``pending``

    def feed(self, chunk: bytes) -> int | None:
        """The 1-based line number of the first offending line that ends in ``chunk``, or None."""
        end = chunk.rfind(b"\n")
        if end < 0:
            self.pending += chunk[: max(0, 16 - len(self.pending))]  # only a line's first field matters
            return None
        block = self.pending + chunk[: end + 1]
        found = self.pattern.search(block)
        if found is not None:
            return self.lines_before + block.count(b"\n", 0, found.start()) + 1
        self.lines_before += block.count(b"\n")
        self.pending = chunk[end + 1 : end + 17]
        return None

    def finish(self) -> int | None:
        """The last line (no final line feed), if it offends."""
        return self.lines_before + 1 if self.pending and self.pattern.search(self.pending) else None


class _LineOfOtherFacility(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def scan_file(fileobj: Any, *, chunk_bytes: int = CHUNK_BYTES, facility_cd: str | None = None) -> tuple[str, int, int]:
    """One streaming pass over a binary file object: (sha256 hex, bytes, data records).

    Records are lines, a last line without line ending included, minus a header first line
    (:func:`formats.is_header`). An empty remainder after the final line ending is not a line.
    With ``facility_cd`` (a one-facility reload), the first line of another facility raises
    :class:`_LineOfOtherFacility` with its line number (the caller names the file).
    """
    digest = hashlib.sha256()
    size = newlines = 0
    last = b""
    head = bytearray()
    head_done = False
    others = _OtherFacilityLines(facility_cd) if facility_cd else None
    while chunk := fileobj.read(chunk_bytes):
        digest.update(chunk)
        size += len(chunk)
        newlines += chunk.count(b"\n")
        if others is not None and (line := others.feed(chunk)) is not None:
            raise _LineOfOtherFacility(line)
        last = chunk[-1:]
        if not head_done:
            end = chunk.find(b"\n")
            head += chunk if end < 0 else chunk[: end + 1]
            head_done = end >= 0 or len(head) > _MAX_HEADER_BYTES
    if others is not None and (line := others.finish()) is not None:
        raise _LineOfOtherFacility(line)
    lines = newlines + (1 if size and last != b"\n" else 0)
    header = lines > 0 and len(head) <= _MAX_HEADER_BYTES and formats.is_header(bytes(head))
    return digest.hexdigest(), size, lines - int(header)


def validate_month(raw_root: str, yyyymm: str, *, fs: Any = None, facility_cd: str | None = None) -> ValidatedManifest:
    """Validate ``<raw_root>/yyyymm=<YYYYMM>`` against its manifest; all or nothing.

    With ``facility_cd`` (a one-facility reload) the whole manifest is parsed and checked, but only that
    facility's listed files are looked at — present, size, SHA-256, records, and every line of that
    facility — and only they are returned: another facility's file need not be there.

    ``raw_root`` is a local path or fsspec URI; with ``fs`` given it is a path (or URI) that ``fs``
    understands. Every listed file must be a regular file (no directory, no symlink) of the listed
    size, SHA-256 and record count. Unlisted files are returned in ``unlisted``, not rejected.
    """
    validate_yyyymm(yyyymm)
    if facility_cd is not None:
        validate_facility_cd(facility_cd)
    if fs is None:
        from fsspec.core import url_to_fs

        fs, _ = url_to_fs(raw_root)
    folder = month_uri(raw_root, yyyymm)
    manifest_uri = f"{folder}/{MANIFEST_NAME}"

    fs.invalidate_cache(folder)
    try:
        entries = fs.ls(folder, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        raise ManifestError(manifest_uri, RULE_MANIFEST_MISSING, "month folder missing") from None
    by_name: dict[str, Mapping[str, Any]] = {_basename(e["name"]): e for e in entries}

    info = by_name.get(MANIFEST_NAME)
    if info is None:
        raise ManifestError(manifest_uri, RULE_MANIFEST_MISSING)
    if info.get("type") != "file" or info.get("islink"):
        raise ManifestError(manifest_uri, RULE_MANIFEST_NOT_FILE)
    if (info.get("size") or 0) > MAX_MANIFEST_BYTES:
        raise ManifestError(manifest_uri, RULE_MANIFEST_TOO_LARGE)
    try:
        with fs.open(manifest_uri, "rb") as f:
            content = f.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(manifest_uri, RULE_MANIFEST_MISSING) from None
    files, created_at = parse_manifest(content, source=manifest_uri, yyyymm=yyyymm)
    listed = {item.path for item in files} | {MANIFEST_NAME}
    if facility_cd is not None:
        files = tuple(item for item in files if item.facility_cd == facility_cd)
        if not files:
            raise ManifestError(manifest_uri, RULE_FACILITY_NOT_LISTED, f"facility_cd {facility_cd}")

    # Cheap checks for every file first, so a bad month fails before hours of hashing.
    for item in files:
        uri = f"{folder}/{item.path}"
        entry = by_name.get(item.path)
        if entry is None:
            raise ManifestError(uri, RULE_FILE_MISSING)
        if entry.get("type") != "file" or entry.get("islink"):
            raise ManifestError(uri, RULE_NOT_REGULAR_FILE)
        if entry.get("size") != item.bytes:
            raise ManifestError(uri, RULE_SIZE, f"manifest {item.bytes}, found {entry.get('size')}")

    def scan(item: ManifestFile) -> tuple[str, int, int] | int | None:
        """(sha256, bytes, records); the line of another facility (an int); None: the file is gone."""
        try:
            with fs.open(f"{folder}/{item.path}", "rb") as f:
                return scan_file(f, facility_cd=facility_cd)
        except FileNotFoundError:
            return None
        except _LineOfOtherFacility as other:
            return other.line

    # Files are read at once (hashlib releases the GIL; on S3 the reads overlap too); the first failing
    # file in manifest order is reported, as if they had been read one after the other.
    with ThreadPoolExecutor(max_workers=SCAN_THREADS, thread_name_prefix="manifest_scan") as pool:
        scans = list(pool.map(scan, files))
    for item, scanned in zip(files, scans, strict=True):
        uri = f"{folder}/{item.path}"
        if scanned is None:
            raise ManifestError(uri, RULE_FILE_MISSING)
        if isinstance(scanned, int):
            raise ManifestError(uri, RULE_LINE_OTHER_FACILITY, f"facility_cd {facility_cd}", line=scanned)
        sha256, size, records = scanned
        if size != item.bytes:
            raise ManifestError(uri, RULE_SIZE, f"manifest {item.bytes}, found {size}")
        if sha256 != item.sha256:
            raise ManifestError(uri, RULE_SHA256)
        if records != item.records:
            raise ManifestError(uri, RULE_RECORDS, f"manifest {item.records}, found {records}")

    unlisted = tuple(sorted(name for name in by_name if name not in listed))
    return ValidatedManifest(
        yyyymm=yyyymm,
        created_at=created_at,
        files=files,
        unlisted=unlisted,
        manifest_sha256=hashlib.sha256(content).hexdigest(),
        facility_cd=facility_cd or "",
    )


def manifest_sha256(fs: Any, raw_root: str, yyyymm: str) -> str | None:
    """SHA-256 of the month's ``_manifest.json`` as it is now (the same bytes :func:`validate_month`
    hashes), or None when there is none; ``fs`` understands ``raw_root`` as in :func:`validate_month`.
    One small read: how a manifest event is told apart from the manifest that was loaded last."""
    folder = month_uri(raw_root, yyyymm)
    uri = f"{folder}/{MANIFEST_NAME}"
    fs.invalidate_cache(folder)  # s3fs would answer from an earlier listing or version (FileExpired)
    try:
        with fs.open(uri, "rb") as f:
            content = f.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        return None
    return hashlib.sha256(content).hexdigest()


def write_export_manifest(fs: Any, path: str, yyyymm: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    """Write a month's output manifest (both backends; one PUT on S3) after its Parquet files; the month's
    entry of export_parquet's result: where it is, its files, and the manifest's own SHA-256 (what the
    Asset event of the month carries, so a consumer can tell a re-export from a repeat)."""
    data = json.dumps(export_manifest(yyyymm, files), ensure_ascii=False, indent=2).encode("utf-8")
    fs.pipe_file(path, data)
    return {"yyyymm": yyyymm, "files": files, "manifest_sha256": hashlib.sha256(data).hexdigest()}


def export_manifest(yyyymm: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    """The output manifest written beside a month's Parquet (both backends): the files it lists with
    their table, rows, bytes and SHA-256; a reader waits for it before reading the month."""
    return {
        "manifest_version": 1,
        "yyyymm": yyyymm,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "compression": "snappy",
        "files": files,
    }
