"""dpc_elt.backends.redshift.s3: locations that are safe in SQL literals, streaming cp932 → UTF-8 transcoding S3 → S3
with bounded multipart parts, streamed hashes and Parquet row counts (moto S3 in server mode)."""

from __future__ import annotations

import hashlib
import io
import tracemalloc

import pytest

from dpc_elt.backends.redshift import s3
from dpc_elt.backends.redshift.s3 import S3Uri
from dpc_elt.core.errors import RawFileError
from dpc_elt.core.rawfile import stage_raw_file
from tests.dpc_elt.conftest import Dpc
from tests.production.conftest import BUCKET

YYYYMM = "202504"


def put(fs, uri: S3Uri, data: bytes) -> None:
    fs.pipe_file(uri.path, data)


def local_staging(file_type: str, content: bytes, source_file: str) -> bytes:
    """What the embedded backend stages for the same bytes (the reference)."""
    out = io.StringIO(newline="\n")
    stage_raw_file(io.BytesIO(content), out, file_type=file_type, source_file=source_file, yyyymm=YYYYMM)
    return out.getvalue().encode("utf-8")


@pytest.mark.parametrize(
    "uri",
    [
        "s3://UpperCase/raw",
        "s3://ab/raw",
        "s3://bucket..name/raw",
        "s3://dpc-bucket/raw/it's",
        "s3://dpc-bucket/raw\\x",
        "s3://dpc-bucket/raw with space",
        "s3://dpc-bucket//raw",
        "https://dpc-bucket/raw",
    ],
)
def test_locations_that_could_break_a_sql_literal_are_refused(uri):
    with pytest.raises(ValueError):
        S3Uri.parse(uri)


def test_location_parts_and_join():
    root = S3Uri.parse("s3://dpc-bucket/raw/")
    month = root.join("yyyymm=202504", "FF1_131000123_2504.txt")
    assert (root.bucket, root.key) == ("dpc-bucket", "raw")
    assert str(month) == "s3://dpc-bucket/raw/yyyymm=202504/FF1_131000123_2504.txt"
    assert month.path == "dpc-bucket/raw/yyyymm=202504/FF1_131000123_2504.txt"
    assert month.name == "FF1_131000123_2504.txt"


def test_transcoding_writes_the_same_utf8_as_the_embedded_staging(s3fs_):
    """Multi-byte kanji, full-width letters and half-width katakana (single cp932 bytes 0xA1-0xDF)."""
    dpc = Dpc()
    rows = [
        dpc.row("ef_in", item_name="初診料"),
        dpc.row("ef_in", order_no="2", item_name="ｶﾞｰｾﾞ ﾃﾞｰﾀ"),
        dpc.row("ef_in", order_no="3", item_name="ＤＰＣ包括①"),
    ]
    fixture = dpc.file("ef_in", rows)  # header + 3 rows, CRLF
    assert "ｶﾞｰｾﾞ".encode("cp932") == b"\xb6\xde\xb0\xbe\xde"  # one byte per half-width kana
    source = S3Uri(BUCKET, f"raw/yyyymm={YYYYMM}/{fixture.path}")
    target = S3Uri(BUCKET, f"staging/yyyymm={YYYYMM}/{fixture.path}.tsv")
    put(s3fs_, source, fixture.content)

    staged = s3.stage_to_s3(
        s3fs_,
        source,
        target,
        file_type="ef_in",
        yyyymm=YYYYMM,
        expected_sha256=hashlib.sha256(fixture.content).hexdigest(),
    )

    body = s3fs_.cat_file(target.path)
    assert body == local_staging("ef_in", fixture.content, fixture.path)
    lines = body.decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == 4  # LF endings, no CR
    assert lines[1].split("\t")[:3] == [YYYYMM, fixture.path, "3"]  # source line 3 (header is line 1)
    assert "ｶﾞｰｾﾞ ﾃﾞｰﾀ" in lines[1] and "ＤＰＣ包括①" in lines[2] and "初診料" in lines[0]
    assert (staged.records, staged.first_line_no, staged.bytes) == (3, 2, len(fixture.content))
    assert staged.staged_bytes == len(body) and staged.staged_uri == str(target)


def d_file(lines: int) -> bytes:
    """A D file of ``lines`` lines, about 290 bytes of UTF-8 each (full-width text), built fast."""
    template = "\t".join(Dpc().row("d", order_no="{n}", item_name="ＤＰＣ包括　入院基本料" * 3)) + "\r\n"
    return "".join(template.replace("{n}", str(n)) for n in range(1, lines + 1)).encode("cp932")


def test_large_files_stream_in_bounded_multipart_parts(s3fs_):
    """Two D files, about 6 and 19 MB of UTF-8, in 5 MiB parts: both uploads are multipart with
    exactly the part size (the ETag counts the parts), and tripling the file leaves the peak of
    Python allocations where it was (read block, one part, rawfile's chunk work: bounded)."""
    peaks, sizes = [], []
    for lines in (22_000, 66_000):
        content = d_file(lines)
        name = Dpc().file("d", []).path
        source = S3Uri(BUCKET, f"raw/yyyymm={YYYYMM}/{name}")
        target = S3Uri(BUCKET, f"staging/yyyymm={YYYYMM}/{name}.tsv")
        put(s3fs_, source, content)
        expected = local_staging("d", content, name)
        tracemalloc.start()
        try:
            staged = s3.stage_to_s3(
                s3fs_,
                source,
                target,
                file_type="d",
                yyyymm=YYYYMM,
                expected_sha256=hashlib.sha256(content).hexdigest(),
                part_bytes=s3.MIN_PART_BYTES,
                read_block_bytes=1024 * 1024,
                chunk_bytes=1024 * 1024,
            )
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        parts = -(-len(expected) // s3.MIN_PART_BYTES)
        assert parts >= 2
        assert s3fs_.info(target.path)["ETag"].strip('"').endswith(f"-{parts}")
        assert staged.records == lines and staged.staged_bytes == len(expected)
        assert hashlib.sha256(s3fs_.cat_file(target.path)).digest() == hashlib.sha256(expected).digest()
        sizes.append(len(expected))
    grown, more = peaks[1] - peaks[0], sizes[1] - sizes[0]
    assert more > 12 * 1024 * 1024
    assert grown < more / 4, f"peak grew {grown / 2**20:.1f} MiB for {more / 2**20:.1f} MiB more data"


@pytest.mark.parametrize("problem", ["bad line", "sha256"])
def test_a_failed_transcoding_leaves_no_staged_object(s3fs_, problem):
    dpc = Dpc()
    rows = [dpc.row("y1"), dpc.row("y1", item_code="A000030", payload_1="20250410")]
    if problem == "bad line":
        rows.append(dpc.row("y1", admission_date="20250231"))
    fixture = dpc.file("y1", rows)
    source = S3Uri(BUCKET, f"raw/yyyymm={YYYYMM}/{fixture.path}")
    target = S3Uri(BUCKET, f"staging/yyyymm={YYYYMM}/{fixture.path}.tsv")
    put(s3fs_, source, fixture.content)
    sha = hashlib.sha256(fixture.content).hexdigest() if problem == "bad line" else "0" * 64

    with pytest.raises(RawFileError) as raised:
        s3.stage_to_s3(s3fs_, source, target, file_type="y1", yyyymm=YYYYMM, expected_sha256=sha)

    assert raised.value.file == fixture.path
    assert (raised.value.line == 4) if problem == "bad line" else ("sha256" in raised.value.rule)
    s3fs_.invalidate_cache()
    assert not s3fs_.exists(target.path)


def test_a_duplicated_y1_case_block_is_found_while_streaming(s3fs_):
    dpc = Dpc()
    block = [dpc.row("y1"), dpc.row("y1", item_code="A000030", payload_1="20250410")]
    fixture = dpc.file("y1", [*block, dpc.row("y1", item_code="A006010", payload_2="I509"), *block])
    source = S3Uri(BUCKET, f"raw/yyyymm={YYYYMM}/{fixture.path}")
    put(s3fs_, source, fixture.content)
    check = s3.Y1DuplicateCheck()

    with pytest.raises(RawFileError, match="duplicate case block") as raised:
        s3.stage_to_s3(
            s3fs_,
            source,
            S3Uri(BUCKET, f"staging/{fixture.path}.tsv"),
            file_type="y1",
            yyyymm=YYYYMM,
            expected_sha256=hashlib.sha256(fixture.content).hexdigest(),
            inspect=check.for_file(fixture.path),
        )
    assert (raised.value.file, raised.value.line) == (fixture.path, 5)  # header, 3 items, then the repeat


def test_sha256_is_streamed_and_parquet_rows_come_from_the_footer(s3fs_, tmp_path):
    import duckdb

    path = tmp_path / "part.parquet"
    with duckdb.connect() as con:
        con.execute(
            f"copy (select i, 'ケース' || i as name, i % 7 = 0 as flag from range(123457) t(i)) "
            f"to '{path}' (format parquet, compression snappy, row_group_size 10000)"
        )
    data = path.read_bytes()
    uri = S3Uri(BUCKET, "processed/yyyymm=202504/0000_part_00.parquet")
    put(s3fs_, uri, data)

    assert s3.sha256_of(s3fs_, uri) == (hashlib.sha256(data).hexdigest(), len(data))
    assert s3.parquet_rows(s3fs_, uri) == 123457
    put(s3fs_, uri, b"not parquet at all")
    with pytest.raises(ValueError, match="not a Parquet file"):
        s3.parquet_rows(s3fs_, uri)
