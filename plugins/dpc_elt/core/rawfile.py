"""Stream one raw DPC file (cp932, TAB, CRLF) into a staged UTF-8 TSV, checking every data line.

Contract: dpc-data-contract.md §1 and §2 (load rules). One pass, bounded memory: the source is read in
chunks, each chunk's complete lines are decoded at once (a line feed byte never occurs inside a cp932
character, so splitting on it is safe), checked, and written as

    yyyymm TAB source_file TAB line_no TAB <the layout's fields, unchanged> LF

i.e. ``formats.LINEAGE_COLUMNS`` followed by ``layout.columns``. ``line_no`` is the 1-based physical line
number in the source (a header, when present, is line 1 and is not written). Fields never hold TAB, CR
or LF, and nothing is quoted or escaped: load the staged file as TSV with quoting disabled.

Every failure is a :class:`~dpc_elt.errors.RawFileError` naming the file, the line and a fixed rule text;
no field value ever reaches a message. On failure ``dst`` holds a partial output and must be discarded.
"""

from __future__ import annotations

import ctypes
import hashlib
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from itertools import chain, compress, repeat
from operator import contains, itemgetter, not_
from typing import BinaryIO, TextIO

from dpc_elt.core import formats
from dpc_elt.core.errors import ParameterError, RawFileError
from dpc_elt.core.params import validate_yyyymm

CHUNK_BYTES = 2 * 1024 * 1024  # measured: 1-2 MiB blocks beat 8 MiB (cache)
# Memory guard only: no real DPC line comes near it. Must be >= CHUNK_BYTES so that the rule holds
# for every line alike (shorter lines never fail it, longer ones always do).
MAX_LINE_BYTES = 64 * 1024 * 1024
UTF8_BOM = b"\xef\xbb\xbf"

RULE_BOM = "UTF-8 byte order mark: file must be cp932"
RULE_UTF8 = "encoding: text is UTF-8, expected cp932 (Shift_JIS)"
RULE_NOT_CP932 = "bytes not valid cp932"
RULE_NUL = "NUL byte"
RULE_STRAY_CR = "stray carriage return inside a line"
RULE_CONTROL = "control character inside a line (only TAB allowed)"
RULE_EMPTY_LINE = "empty line"
RULE_FIELD_COUNT = "wrong number of fields"
RULE_DATE = "impossible date (yyyymmdd, 00000000 or 99999999 expected)"
RULE_LINE_TOO_LONG = f"line longer than {MAX_LINE_BYTES} bytes"
RULE_SHA_CHANGED = "file changed since validation (sha256)"
RULE_DPC_CODE = "malformed DPC code (14 characters: 6 digits, then digits or x)"
RULE_DPC_CODE_MISSING = "DPC code missing on a bundled row (data category 93)"
# Across the lines of a month (checked by the loader after reading all y1 files of the month).
RULE_DUPLICATE_Y1 = "y1 item repeated for one case (duplicate case block)"

# What Python's cp932 codec makes of the unassigned single bytes 0x80, 0xA0, 0xFD-0xFF.
_UNASSIGNED = ("\x80", "\uf8f0", "\uf8f1", "\uf8f2", "\uf8f3")


@dataclass
class StagedFile:
    """Result of :func:`stage_raw_file`: counts, names and hashes only."""

    file_type: str
    source_file: str
    records: int
    sha256: str
    bytes: int
    staged_path: str = ""


def is_valid_date(value: str) -> bool:
    """8 ASCII digits forming a real date, or one of the sentinels 00000000 / 99999999."""
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        return False
    if value in formats.DATE_SENTINELS:
        return True
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


def dpc_code_rule(data_category: str, dpc_code: str) -> str:
    """The rule a D line's 分類番号 breaks, or "" (contract §1: 14 characters, the first 6 the disease
    group): empty only on rows that are not DPC bundled (data category 93)."""
    if dpc_code == "":
        return RULE_DPC_CODE_MISSING if data_category.strip() == formats.DPC_BUNDLED_CATEGORY else ""
    return "" if formats.DPC_CODE_PATTERN.fullmatch(dpc_code) else RULE_DPC_CODE


_TAB = "\t"
# Control bytes other than TAB and LF (CR is handled first). None of them is ever a cp932 trail byte,
# so finding them in the raw bytes is exact.
_CONTROL_TABLE = bytes(0 if (b < 0x20 and b not in (0x09, 0x0A)) or b == 0x7F else 1 for b in range(256))


@dataclass(frozen=True)
class _DateGroup:
    """Date columns read with one partial split from one side of the line."""

    columns: tuple[int, ...]
    from_right: bool
    maxsplit: int
    getter: itemgetter
    required: bool

    @classmethod
    def build(cls, columns: tuple[int, ...], ncols: int, *, from_right: bool, required: bool) -> _DateGroup:
        if from_right:
            # rsplit(TAB, k) gives [head, f[ncols-k], ..., f[ncols-1]]
            maxsplit = ncols - min(columns)
            positions = tuple(1 + c - min(columns) for c in columns)
        else:
            maxsplit = max(columns) + 1
            positions = columns
        return cls(columns, from_right, maxsplit, itemgetter(*positions), required)

    def values(self, lines: list[str]) -> set[str]:
        """The distinct values of these columns over ``lines`` (all with the right field count)."""
        method = str.rsplit if self.from_right else str.split
        got = map(self.getter, map(method, lines, repeat(_TAB), repeat(self.maxsplit)))
        return set(chain.from_iterable(got)) if len(self.columns) > 1 else set(got)

    def tuples(self, lines: list[str]) -> set[tuple[str, ...]]:
        """The distinct tuples of these columns (at least two) over ``lines``."""
        method = str.rsplit if self.from_right else str.split
        return set(map(self.getter, map(method, lines, repeat(_TAB), repeat(self.maxsplit))))


class _ByteRuleError(Exception):
    """A rule broken in the bytes of a block, at the 0-based line ``line_index`` of the block."""

    def __init__(self, line_index: int, rule: str) -> None:
        super().__init__(rule)
        self.line_index = line_index
        self.rule = rule


def decoded_lines(data: bytes, *, final: bool) -> list[str]:
    """The lines of ``data`` (complete lines ending with LF, the last one may lack it when ``final``)
    after the checks that need the bytes: NUL, stray CR, control characters, valid and assigned cp932.
    CRLF becomes LF. Raises ``_ByteRuleError`` with the 0-based line of the first failing check."""
    pos = data.find(b"\x00")
    if pos >= 0:
        raise _ByteRuleError(data.count(b"\n", 0, pos), RULE_NUL)
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
        pos = data.find(b"\r")
        if pos >= 0:
            # A last line cut between CR and LF keeps its CR: accept it as the line ending.
            if final and pos == len(data) - 1:
                data = data[:-1]
            else:
                raise _ByteRuleError(data.count(b"\n", 0, pos), RULE_STRAY_CR)
    pos = data.translate(_CONTROL_TABLE).find(0)
    if pos >= 0:
        raise _ByteRuleError(data.count(b"\n", 0, pos), RULE_CONTROL)
    try:
        text = data.decode(formats.ENCODING)
    except UnicodeDecodeError as exc:
        raise _ByteRuleError(data.count(b"\n", 0, exc.start), RULE_NOT_CP932) from None
    for char in _UNASSIGNED:
        if char in text:
            raise _ByteRuleError(text.count("\n", 0, text.find(char)), RULE_NOT_CP932)
    lines = text.split("\n")
    if text.endswith("\n") or not text:
        lines.pop()
    return lines


class _LineChecker:
    """Checks the lines of one file block by block and renders the staged rows.

    Fast path per block, all in C loops: the set of TAB counts, the set of distinct values of each
    date column (only values not seen before are parsed). Only when a block breaks a rule does the
    slow path walk its lines one by one to name the first bad line.
    """

    def __init__(self, layout: formats.FileLayout, source_file: str, yyyymm: str) -> None:
        self.source_file = source_file
        self.prefix = f"{yyyymm}\t{source_file}\t"
        self.ncols = layout.column_count
        self.ntabs = layout.column_count - 1
        self.dates = layout.date_column_indexes()
        self.names = {i: name for i, name, _ in self.dates}
        groups: dict[tuple[bool, bool], list[int]] = {}
        for i, _, required in self.dates:
            from_right = (self.ncols - i + 1) < (i + 2)
            groups.setdefault((from_right, required), []).append(i)
        self.groups = tuple(
            _DateGroup.build(tuple(cols), self.ncols, from_right=side, required=req)
            for (side, req), cols in groups.items()
        )
        # y1: payload date columns by item code, read as distinct (item_code, payload...) tuples.
        self.payload_group: _DateGroup | None = None
        self.payload_positions: dict[str, tuple[int, ...]] = {}
        self.payload_columns: dict[str, tuple[int, ...]] = {}
        if layout.file_type == formats.Y1.file_type and formats.Y1_DATE_PAYLOADS:
            item_idx = layout.columns.index("item_code")
            payload_cols = sorted({layout.columns.index(c) for cs in formats.Y1_DATE_PAYLOADS.values() for c in cs})
            cols = (item_idx, *payload_cols)
            self.payload_group = _DateGroup(cols, False, max(cols) + 1, itemgetter(*cols), False)
            self.item_idx = item_idx
            for code, names in formats.Y1_DATE_PAYLOADS.items():
                idx = tuple(layout.columns.index(c) for c in names)
                self.payload_columns[code] = idx
                self.payload_positions[code] = tuple(cols.index(i) for i in idx)
                self.names.update({layout.columns.index(c): c for c in names})
        self.ok = set(formats.DATE_SENTINELS)  # known-good values of required date columns
        self.ok_opt = self.ok | {""}  # known-good values of optional date columns
        # D: (data_category, dpc_code) pairs, read with one split from each side of the line.
        self.dpc_columns: tuple[int, int] | None = None
        if layout.file_type == formats.D.file_type:
            category, code = layout.columns.index("data_category"), layout.columns.index("dpc_code")
            self.dpc_columns = (category, code - self.ncols)  # the code counted from the right
            self.dpc_ok: set[tuple[str, str]] = set()
        self.line_no = 0
        self.records = 0

    def fail(self, line: int | None, rule: str, detail: str = "") -> RawFileError:
        return RawFileError(self.source_file, rule, detail, line=line)

    def _learn(self, values: set[str]) -> bool:
        """Add ``values`` to the known-good dates if all are valid; False if one is not."""
        if not all(map(is_valid_date, values)):
            return False
        self.ok.update(values)
        self.ok_opt.update(values)
        return True

    def _locate(self, lines: list[str], first: int) -> RawFileError:
        """Slow path: the error of the first bad line of a block the fast path rejected."""
        for n, line in enumerate(lines, first):
            fields = line.split(_TAB)
            if len(fields) != self.ncols:
                if not line:
                    return self.fail(n, RULE_EMPTY_LINE)
                return self.fail(n, RULE_FIELD_COUNT, f"expected {self.ncols} fields, found {len(fields)}")
            columns = [(i, required) for i, _, required in self.dates]
            if self.payload_group is not None:
                columns += [(i, False) for i in self.payload_columns.get(fields[self.item_idx], ())]
            for i, required in columns:
                value = fields[i]
                if not (is_valid_date(value) or (value == "" and not required)):
                    return self.fail(n, RULE_DATE, f"column {self.names[i]}")
            if self.dpc_columns is not None:
                rule = dpc_code_rule(fields[self.dpc_columns[0]], fields[self.dpc_columns[1]])
                if rule:
                    return self.fail(n, rule, "column dpc_code")
        return self.fail(None, "internal: block rejected but no bad line found")

    def _dpc_pairs(self, lines: list[str]) -> set[tuple[str, str]]:
        category, code = self.dpc_columns
        categories = map(itemgetter(category), map(str.split, lines, repeat(_TAB), repeat(category + 1)))
        codes = map(itemgetter(code), map(str.rsplit, lines, repeat(_TAB), repeat(-code)))
        return set(zip(categories, codes, strict=True))

    def block(self, data: bytes, *, final: bool) -> str:
        """Check the lines in ``data`` (ending with LF unless ``final``); return the staged rows."""
        first = self.line_no + 1
        try:
            lines = decoded_lines(data, final=final)
        except _ByteRuleError as error:
            raise self.fail(first + error.line_index, error.rule) from None
        if not lines:
            return ""

        if set(map(str.count, lines, repeat(_TAB))) != {self.ntabs}:
            raise self._locate(lines, first)
        for group in self.groups:
            new = group.values(lines) - (self.ok if group.required else self.ok_opt)
            if new and not self._learn(new):
                raise self._locate(lines, first)
        if self.payload_group is not None:
            positions = self.payload_positions
            new = set()
            for row in self.payload_group.tuples(lines):
                for p in positions.get(row[0], ()):
                    if row[p] not in self.ok_opt:
                        new.add(row[p])
            if new and not self._learn(new):
                raise self._locate(lines, first)
        if self.dpc_columns is not None:
            new_pairs = self._dpc_pairs(lines) - self.dpc_ok
            if any(dpc_code_rule(*pair) for pair in new_pairs):
                raise self._locate(lines, first)
            self.dpc_ok |= new_pairs

        prefix = self.prefix
        out = "".join([f"{prefix}{n}\t{line}\n" for n, line in enumerate(lines, first)])
        self.line_no += len(lines)
        self.records += len(lines)
        return out


def first_utf8_line(data: bytes) -> int | None:
    """0-based index of the first LF-separated line of ``data`` that is UTF-8 text, or None.

    Such a line has non-ASCII bytes that all decode as strict UTF-8, one character at least
    U+0800 among them (Japanese takes three bytes in UTF-8). Its bytes may be valid cp932 too and
    would load as mojibake; genuine cp932 Japanese practically never decodes as UTF-8. C loops only:
    one UTF-8 decode of the block with replacement characters, then a filter over its lines.
    """
    if data.isascii():
        return None
    lines = data.decode("utf-8", "replace").split("\n")
    clean = compress(enumerate(lines), map(not_, map(contains, lines, repeat("\ufffd"))))
    for index, line in clean:
        if not line.isascii() and max(line) >= "\u0800":
            return index
    return None


def _checked_layout(file_type: str, source_file: str, yyyymm: str, chunk_bytes: int) -> formats.FileLayout:
    layout = formats.LAYOUTS.get(file_type)
    if layout is None:
        raise ParameterError(f"file_type must be one of {', '.join(formats.FILE_TYPES)}")
    validate_yyyymm(yyyymm)
    if not source_file or any(c in source_file for c in "\t\r\n"):
        raise ParameterError("source_file must be a non-empty name without TAB, CR or LF")
    if chunk_bytes < 1 or chunk_bytes > MAX_LINE_BYTES:
        raise ParameterError(f"chunk_bytes must be between 1 and {MAX_LINE_BYTES}")
    return layout


def _check_and_write(
    src: BinaryIO, dst: TextIO, checker: _LineChecker, *, at_file_start: bool, chunk_bytes: int
) -> None:
    """The one line-by-line loop: read ``src`` to its end in chunks, check its lines with ``checker``
    (which numbers them on from its ``line_no``) and write the staged rows to ``dst``. Only a read from
    the file's start looks for a byte order mark and a header line."""
    pending = b""
    started = not at_file_start
    while True:
        chunk = src.read(chunk_bytes)
        if chunk:
            if pending:
                nl = chunk.find(b"\n")
                if len(pending) + (nl if nl >= 0 else len(chunk)) > MAX_LINE_BYTES:
                    raise checker.fail(checker.line_no + 1, RULE_LINE_TOO_LONG)
            buf = pending + chunk if pending else chunk
            end = buf.rfind(b"\n")
            if end < 0:
                pending = buf
                continue
            data, pending = buf[: end + 1], buf[end + 1 :]
        else:
            data, pending = pending, b""
            if not data:
                break
        utf8_at = first_utf8_line(data)
        if utf8_at is not None:
            utf8_at += checker.line_no + 1
        if not started:
            started = True
            if data.startswith(UTF8_BOM):
                raise checker.fail(1, RULE_BOM)
            nl = data.find(b"\n")
            first_line = data if nl < 0 else data[: nl + 1]
            if formats.is_header(first_line):
                checker.line_no = 1
                data = data[len(first_line) :]
        if data:
            try:
                rows = checker.block(data, final=not chunk)
            except RawFileError as error:  # the first bad line wins, whatever its rule
                if utf8_at is not None and (error.line is None or error.line >= utf8_at):
                    raise checker.fail(utf8_at, RULE_UTF8) from None
                raise
            if utf8_at is not None:
                raise checker.fail(utf8_at, RULE_UTF8)
            dst.write(rows)
        elif utf8_at is not None:
            raise checker.fail(utf8_at, RULE_UTF8)
        if not chunk:
            break


class _Hashed:
    """A binary reader that hashes and counts every byte read through it."""

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.digest = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int) -> bytes:
        chunk = self.src.read(size)
        self.digest.update(chunk)
        self.bytes += len(chunk)
        return chunk


def stage_raw_file(
    src: BinaryIO,
    dst: TextIO,
    *,
    file_type: str,
    source_file: str,
    yyyymm: str,
    expected_sha256: str | None = None,
    staged_path: str = "",
    chunk_bytes: int = CHUNK_BYTES,
) -> StagedFile:
    """Transcode and check ``src`` (binary, cp932) into ``dst`` (UTF-8 text; open it with ``newline="\\n"``).

    ``source_file`` is the bare file name written to every row and used in errors; ``staged_path`` is
    only copied into the result (the caller knows where ``dst`` lives). SHA-256 and byte count are of
    the source bytes. With ``expected_sha256`` (the validated manifest's), a different hash at the end
    raises ``RULE_SHA_CHANGED`` — after ``dst`` was written, so the caller must discard it.
    """
    layout = _checked_layout(file_type, source_file, yyyymm, chunk_bytes)
    checker = _LineChecker(layout, source_file, yyyymm)
    hashed = _Hashed(src)
    _check_and_write(hashed, dst, checker, at_file_start=True, chunk_bytes=chunk_bytes)  # type: ignore[arg-type]
    sha256 = hashed.digest.hexdigest()
    if expected_sha256 is not None and sha256 != expected_sha256.lower():
        raise RawFileError(source_file, RULE_SHA_CHANGED)
    return StagedFile(
        file_type=file_type,
        source_file=source_file,
        records=checker.records,
        sha256=sha256,
        bytes=hashed.bytes,
        staged_path=staged_path,
    )


@dataclass(frozen=True)
class StagedPiece:
    """Result of :func:`stage_piece`."""

    lines: int  # physical lines read (a skipped header line counts)
    records: int  # rows written
    first_record_line: int  # the file's line number of the first row written (0: none)


def stage_piece(
    src: BinaryIO,
    dst: TextIO,
    *,
    file_type: str,
    source_file: str,
    yyyymm: str,
    first_line_no: int,
    chunk_bytes: int = CHUNK_BYTES,
) -> StagedPiece:
    """:func:`stage_raw_file` for one piece of a file: ``src`` reads whole lines of the file, from the
    start of its line ``first_line_no`` up to a line feed (or the file's end); the piece from the file's
    start (``first_line_no`` 1) refuses a byte order mark and skips a header line, as the whole file would.

    Every rule is checked and every row written exactly as :func:`stage_raw_file` does for these lines,
    line numbers included (they count on from ``first_line_no``), so the pieces of a file together stage
    the rows of the whole file. No hash: a piece cannot know the file's SHA-256; the caller makes sure
    the piece holds the validated bytes. A RawFileError names the file's line. When a piece holds
    several bad lines, the one named may differ from the whole file's (rules are checked block by block
    and the blocks start elsewhere): a caller that must name exactly the line-by-line error checks the
    file again with :func:`stage_raw_file`.
    """
    layout = _checked_layout(file_type, source_file, yyyymm, chunk_bytes)
    if first_line_no < 1:
        raise ParameterError("first_line_no must be at least 1")
    checker = _LineChecker(layout, source_file, yyyymm)
    checker.line_no = first_line_no - 1
    _check_and_write(src, dst, checker, at_file_start=first_line_no == 1, chunk_bytes=chunk_bytes)
    lines = checker.line_no - (first_line_no - 1)
    # Every line read became a row, but a skipped header: the first row is that many lines further on.
    first_record_line = first_line_no + (lines - checker.records) if checker.records else 0
    return StagedPiece(lines=lines, records=checker.records, first_record_line=first_record_line)


# ------------------------------------------------------------------------------------ parallel pieces
# The fast path of the embedded load: each file is cut into line-aligned pieces that worker processes
# check and transcode at the same time; the per-line rules (field counts, dates, DPC codes) are then
# checked set-based by the warehouse over what it read. A piece is only "ok" or not: whenever anything
# fails, the loader names the error with :func:`stage_raw_file` (the rules above, line by line), so a
# message never depends on how a file was cut.

PIECE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Piece:
    """Bytes ``[start, end)`` of one raw file: whole lines, the first piece from byte 0."""

    path: str
    start: int
    end: int
    size: int  # of the whole file: the last piece ends at it
    target: str  # where the UTF-8 rows go


@dataclass(frozen=True)
class PieceResult:
    lines: int  # physical lines in the piece (a skipped header line counts)
    records: int  # data lines written to the target
    ok: bool  # False: a rule that needs the bytes is broken somewhere in the piece
    seconds: float = 0.0  # CPU time the piece took


@contextmanager
def piece_workers(
    count: int, *, preload: Sequence[str], initializer: Callable[..., None], initargs: tuple = ()
) -> Iterator[ProcessPoolExecutor]:
    """``count`` worker processes for pieces, forked from a small server that has imported ``preload``
    (forkserver: never forked from this process with DuckDB's or Airflow's threads running), each started
    with ``initializer(*initargs)``; on any error the queued pieces are dropped."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    with ProcessPoolExecutor(max_workers=count, mp_context=context, initializer=initializer, initargs=initargs) as pool:
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


class DiscardedRows:
    """Where a check that stages nothing writes (``stage_raw_file`` only calls ``write``): each block of
    rows goes to ``inspect``, if given, then is dropped."""

    def __init__(self, inspect: Callable[[str], None] | None = None) -> None:
        self.inspect = inspect

    def write(self, text: str) -> int:
        if text and self.inspect is not None:
            self.inspect(text)
        return len(text)


def keep_freed_buffers_in_worker() -> None:
    """Initializer of a piece worker process: let glibc keep freed buffers for the next piece.

    Each piece allocates and frees buffers of megabytes (raw bytes, decoded text, UTF-8 rows). By default
    glibc returns them to the kernel and faults fresh zeroed pages in for the next piece: measured at
    the M scale, ~50,000 page faults and a quarter of the CPU of a 32 MiB piece. Elsewhere (not glibc)
    the allocator keeps its defaults."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # glibc's malloc.h
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # glibc's largest allowed value
    libc.mallopt(m_trim_threshold, 512 * 1024 * 1024)
    libc.mallopt(m_top_pad, 64 * 1024 * 1024)


def piece_bounds(handle: BinaryIO, size: int, piece_bytes: int = PIECE_BYTES) -> list[tuple[int, int]]:
    """Cut a file into ``[start, end)`` ranges of about ``piece_bytes``, each ending just after a LF
    (or at the end of the file)."""
    bounds: list[tuple[int, int]] = []
    start = 0
    while start < size:
        cut = start + piece_bytes
        if cut >= size:
            bounds.append((start, size))
            break
        handle.seek(cut)
        while True:
            window = handle.read(64 * 1024)
            if not window:
                end = size
                break
            nl = window.find(b"\n")
            if nl >= 0:
                end = cut + nl + 1
                break
            cut += len(window)
        bounds.append((start, end))
        start = end
    return bounds


@dataclass(frozen=True)
class PieceSpan:
    """Bytes ``[start, end)`` of a file, whole lines; ``first_line_no`` is the file's line number of the
    first of them (1 + the line feeds before ``start``)."""

    start: int
    end: int
    first_line_no: int


class PieceCutter:
    """:func:`piece_bounds` for a file read once from start to end: fed its bytes in order, it returns
    the same line-aligned pieces as soon as each one's end has been read, each with the number of its
    first line — which a piece cut from a seekable file cannot know without reading what comes before."""

    def __init__(self, piece_bytes: int = PIECE_BYTES) -> None:
        if piece_bytes < 1:
            raise ParameterError("piece_bytes must be at least 1")
        self.piece_bytes = piece_bytes
        self.start = 0  # of the piece being cut
        self.first_line_no = 1  # of the piece being cut
        self.line_feeds = 0  # read since self.start
        self.position = 0  # bytes fed so far

    def feed(self, chunk: bytes) -> list[PieceSpan]:
        """The pieces that end in ``chunk`` (the file's next bytes)."""
        done: list[PieceSpan] = []
        offset = 0  # in chunk: where the piece being cut continues
        while True:
            # As piece_bounds: a piece ends at the first line feed at or after start + piece_bytes.
            search_from = max(self.start + self.piece_bytes - self.position, offset)
            nl = chunk.find(b"\n", search_from) if search_from < len(chunk) else -1
            if nl < 0:
                break
            end = self.position + nl + 1
            self.line_feeds += chunk.count(b"\n", offset, nl + 1)
            done.append(PieceSpan(self.start, end, self.first_line_no))
            self.start, self.first_line_no, self.line_feeds = end, self.first_line_no + self.line_feeds, 0
            offset = nl + 1
        self.line_feeds += chunk.count(b"\n", offset)
        self.position += len(chunk)
        return done

    def finish(self) -> list[PieceSpan]:
        """The last piece, once the file has been read to its end (none when the file ended with one)."""
        if self.start >= self.position:
            return []
        last = PieceSpan(self.start, self.position, self.first_line_no)
        self.start = self.position
        return [last]


def transcode_piece(piece: Piece) -> PieceResult:
    """Check the bytes of one piece and write its lines as UTF-8 rows ``<line in piece>\\t<fields>\\n``.

    Runs in a worker process. The line numbers count from 1 at the piece's first line (the loader adds
    the lines of the pieces before it). The first piece skips a header line and refuses a byte order
    mark. Every rule that needs the bytes is checked as :func:`stage_raw_file` checks it (NUL, CR,
    control characters, cp932, UTF-8 text, line length); fields are left to the warehouse.
    """
    started = time.process_time()
    lines = records = 0
    pending = b""
    final_piece = piece.end >= piece.size
    with open(piece.path, "rb") as src, open(piece.target, "wb") as dst:
        src.seek(piece.start)
        left = piece.end - piece.start
        while True:
            chunk = src.read(min(CHUNK_BYTES, left)) if left > 0 else b""
            left -= len(chunk)
            if chunk:
                if pending:
                    nl = chunk.find(b"\n")
                    if len(pending) + (nl if nl >= 0 else len(chunk)) > MAX_LINE_BYTES:
                        return PieceResult(lines, records, ok=False, seconds=time.process_time() - started)
                buf = pending + chunk if pending else chunk
                cut = buf.rfind(b"\n")
                if cut < 0:
                    pending = buf
                    continue
                data, pending = buf[: cut + 1], buf[cut + 1 :]
            else:
                data, pending = pending, b""
                if not data:
                    break
            if piece.start == 0 and lines == 0:
                if data.startswith(UTF8_BOM):
                    return PieceResult(lines, records, ok=False, seconds=time.process_time() - started)
                nl = data.find(b"\n")
                first_line = data if nl < 0 else data[: nl + 1]
                if formats.is_header(first_line):
                    lines = 1
                    data = data[len(first_line) :]
            if data:
                if first_utf8_line(data) is not None:
                    return PieceResult(lines, records, ok=False, seconds=time.process_time() - started)
                try:
                    texts = decoded_lines(data, final=final_piece and not chunk)
                except _ByteRuleError:
                    return PieceResult(lines, records, ok=False, seconds=time.process_time() - started)
                first = lines + 1
                dst.write("".join([f"{n}\t{text}\n" for n, text in enumerate(texts, first)]).encode("utf-8"))
                lines += len(texts)
                records += len(texts)
            if not chunk:
                break
    return PieceResult(lines, records, ok=True, seconds=time.process_time() - started)
