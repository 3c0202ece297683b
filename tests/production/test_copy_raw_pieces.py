"""copy_raw on Redshift staged in pieces on every core (moto S3 in server mode, the Data API through the
Stubber): pieces of a few hundred bytes and the worker pool forced, every result compared with the
line-by-line path (one file at a time in the task): the same rows and line numbers, the same errors,
nothing staged and no SQL sent when the month is refused, and the same one load batch when it is not."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
from botocore.stub import ANY

from dpc_elt.backends.redshift import load, pieces
from dpc_elt.backends.redshift.s3 import S3Uri
from dpc_elt.core import formats, rawfile
from dpc_elt.core.errors import RawFileError
from tests.dpc_elt.conftest import Dpc, FixtureFile
from tests.production.conftest import BUCKET, CONN_ID, REGION
from tests.production.support import (
    PARAMS,
    STAGING,
    YYYYMM,
    failure_event,
    land_month,
    load_statements,
    success_event,
)

PIECE_BYTES = 400
OTHER_FACILITY = "131000124"
STAGING_PREFIX = f"staging/yyyymm={YYYYMM}/"


@pytest.fixture
def in_pieces(monkeypatch):
    """Pieces of a few hundred bytes, the worker pool whatever the month's size, two workers."""
    monkeypatch.setattr(pieces, "PIECE_BYTES", PIECE_BYTES)
    monkeypatch.setattr(pieces, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setattr(pieces, "worker_count", lambda: 2)


@pytest.fixture
def client(aws):
    import boto3

    return boto3.client("s3", endpoint_url=aws.endpoint, region_name=REGION)


def delivery(dpc: Dpc | None = None) -> list[FixtureFile]:
    """A month whose files are cut many times at PIECE_BYTES: y1 and D of one facility, EF of two (the
    staging order sorts them), kana, kanji, a header on y1 and EF, none on D, a last line without CRLF."""
    dpc = dpc or Dpc()
    y1 = [dpc.row("y1", patient_id=f"{n:010d}") for n in range(1, 25)]
    y1[3] = dpc.row("y1", patient_id="0000000004", item_code="A006010", payload_2="I509", payload_9="心不全")
    ef = [dpc.row("ef_in", order_no=str(n)) for n in range(1, 30)]
    ef[7] = dpc.row("ef_in", order_no="8", item_name="ｶﾞｰｾﾞ①髙﨑", performed_date="")
    d = [dpc.row("d", order_no=str(n)) for n in range(1, 30)]
    return [
        dpc.file("y1", y1),
        dpc.file("ef_in", ef, final_newline=False),
        dpc.file("ef_in", ef[:12], facility_cd=OTHER_FACILITY),
        dpc.file("d", d, header=False),
    ]


def validated(backend, s3fs_, files: list[FixtureFile]):
    land_month(s3fs_, files)
    return backend.validate_month(YYYYMM)


def line_by_line(files: list[FixtureFile]) -> dict[str, str]:
    """What the line-by-line path stages per file type: each file's rows (rawfile.stage_raw_file) in
    staging order."""
    staged = dict.fromkeys(formats.FILE_TYPES, "")
    for file in sorted(files, key=lambda f: (formats.FILE_TYPES.index(f.file_type), f.path)):
        out = io.StringIO(newline="\n")
        rawfile.stage_raw_file(
            io.BytesIO(file.content), out, file_type=file.file_type, source_file=file.path, yyyymm=YYYYMM
        )
        staged[file.file_type] += out.getvalue()
    return staged


def staged_keys(client) -> list[str]:
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=STAGING_PREFIX)
    return [item["Key"] for item in listing.get("Contents", [])]


def read(client, uri: str) -> bytes:
    parsed = S3Uri.parse(uri)
    return client.get_object(Bucket=parsed.bucket, Key=parsed.key)["Body"].read()


def line_start(content: bytes, line: int) -> int:
    """The byte where a file's line (1-based) starts."""
    at = 0
    for _ in range(line - 1):
        at = content.index(b"\n", at) + 1
    return at


def refused(fs, backend, manifest) -> RawFileError:
    with pytest.raises(RawFileError) as raised:
        load.stage_month(fs, backend.where, YYYYMM, manifest)
    return raised.value


def refused_line_by_line(fs, backend, manifest) -> RawFileError:
    """The error of the line-by-line path: the month staged file by file, as a small month is."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pieces, "PARALLEL_FROM_BYTES", sys.maxsize)
        return refused(fs, backend, manifest)


# ------------------------------------------------------------------------------------------- rows


def test_pieces_stage_exactly_the_rows_of_the_line_by_line_path(in_pieces, aws, cfg, backend, s3fs_, client):
    files = delivery()
    manifest = validated(backend, s3fs_, files)

    staged = load.stage_month(s3fs_, backend.where, YYYYMM, manifest)

    objects = staged["files"]
    for file in files:
        assert sum(o["source_file"] == file.path for o in objects) >= 4, f"{file.path} was cut into pieces"
    expected = line_by_line(files)
    for file_type in formats.FILE_TYPES:
        copy_manifest = json.loads(read(client, staged["copy_manifests"][file_type]))
        with_rows = [o["staged_uri"] for o in objects if o["file_type"] == file_type and o["records"]]
        assert copy_manifest == {"entries": [{"url": uri, "mandatory": True} for uri in with_rows]}
        # the pieces, in the manifest's order, hold the rows of the whole files: line numbers included
        assert b"".join(read(client, uri) for uri in with_rows).decode("utf-8") == expected[file_type]
    for obj in objects:
        if obj["records"]:
            first_row = read(client, obj["staged_uri"]).decode("utf-8").split("\n", 1)[0]
            assert int(first_row.split("\t")[2]) == obj["first_line_no"]  # how COPY errors are located
    assert {o["records"] for o in objects if not o["records"]} <= {0}
    assert sorted(staged_keys(client)) == sorted(
        [S3Uri.parse(uri).key for uri in staged["copy_manifests"].values()]
        + [S3Uri.parse(o["staged_uri"]).key for o in objects if o["records"]]
    )


def staged_rows(client, staged: dict) -> dict[str, str]:
    """Per file type, the rows of every staged object with rows, in the order staging listed them."""
    return {
        file_type: b"".join(
            read(client, o["staged_uri"]) for o in staged["files"] if o["file_type"] == file_type and o["records"]
        ).decode("utf-8")
        for file_type in formats.FILE_TYPES
    }


def test_one_worker_still_cuts_pieces_and_a_small_month_is_staged_file_by_file(
    in_pieces, aws, cfg, backend, s3fs_, client, monkeypatch
):
    files = delivery()
    manifest = validated(backend, s3fs_, files)
    expected = line_by_line(files)

    one_worker = load.stage_month(s3fs_, backend.where, YYYYMM, manifest, workers=1)
    assert len(one_worker["files"]) > 3 * len(files) and staged_rows(client, one_worker) == expected

    monkeypatch.setattr(pieces, "PARALLEL_FROM_BYTES", sum(len(f.content) for f in files) + 1)
    small = load.stage_month(s3fs_, backend.where, YYYYMM, manifest)
    in_order = sorted(files, key=lambda f: (formats.FILE_TYPES.index(f.file_type), f.path))
    assert [o["staged_uri"] for o in small["files"]] == [f"{STAGING}/{f.path}.tsv" for f in in_order]
    assert staged_rows(client, small) == expected


# ------------------------------------------------------------------------------------ the one batch


def test_the_load_batch_is_the_same_one_transaction_and_counts_every_piece(
    in_pieces, aws, cfg, backend, s3fs_, data_api
):
    """The COPY statements are the line-by-line path's (their manifests list more objects); each COPY's
    expected rows are the records of all its pieces."""
    files = delivery()
    manifest = validated(backend, s3fs_, files)
    sid = data_api.expect_batch(load_statements(), PARAMS, f"dpc_elt.copy_raw.{YYYYMM}")

    pending = backend.load_month(YYYYMM, manifest)

    records = {t: sum(f.records for f in files if f.file_type == t) for t in formats.FILE_TYPES}
    assert pending.state["copies"] == [
        {"file_type": t, "position": position, "rows": records[t]}
        for t, position in zip(formats.FILE_TYPES, (4, 8, 12), strict=True)
    ]
    assert len(pending.state["files"]) > 3 * len(files)  # one entry per piece, for explain_failure
    subs = [{"Status": "FINISHED"} for _ in range(12)]
    for copy in pending.state["copies"]:
        subs[copy["position"] - 1] = {"Status": "FINISHED", "ResultRows": copy["rows"]}
    data_api.expect_describe(sid, subs=subs)
    assert backend.resume(pending.state, success_event(sid)) == records
    data_api.assert_done()


def test_a_line_copy_rejects_in_a_piece_is_named_by_its_line_in_the_hospitals_file(
    in_pieces, aws, cfg, backend, s3fs_, data_api, client
):
    files = delivery()
    manifest = validated(backend, s3fs_, files)
    sid = data_api.expect_batch(load_statements(), PARAMS, ANY)
    pending = backend.load_month(YYYYMM, manifest)
    d_pieces = [f for f in pending.state["files"] if f["file_type"] == "d"]
    piece = d_pieces[3]
    second_row = read(client, f"{STAGING}/{piece['staged_name']}").decode("utf-8").split("\n")[1]
    subs = [{"Status": "FINISHED"} for _ in range(11)] + [{"Status": "FAILED", "RedshiftQueryId": 4242}]
    data_api.expect_describe(sid, status="FAILED", subs=subs)
    lookup = data_api.expect_statement(ANY, ANY, ANY)
    data_api.expect_describe(lookup)
    data_api.expect_result(lookup, [[f"{STAGING}/{piece['staged_name']}", 2, "item_name", 1204]])

    with pytest.raises(RawFileError) as raised:
        backend.resume(pending.state, failure_event(sid))

    assert (raised.value.file, raised.value.line) == (piece["source_file"], int(second_row.split("\t")[2]))
    assert raised.value.line > 2 * 3  # a line of a later piece, counted in the hospital's file


# ------------------------------------------------------------------------------- refused months


def broken(dpc: Dpc, kind: str) -> list[FixtureFile]:
    """The delivery with one bad line far into one file: in a later piece, never the first."""
    files = delivery(dpc)
    ef = [dpc.row("ef_in", order_no=str(n)) for n in range(1, 30)]
    d = [dpc.row("d", order_no=str(n)) for n in range(1, 30)]
    y1 = [dpc.row("y1", patient_id=f"{n:010d}") for n in range(1, 25)]
    if kind == "ef date":
        ef[20] = dpc.row("ef_in", order_no="21", performed_date="20250431")
        files[1] = dpc.file("ef_in", ef)
    elif kind == "second ef cp932":  # a lead byte without a valid trail byte, in the 10th line
        content = files[2].content
        at = content.index(b"\n".join(content.split(b"\n")[9:10]))
        bad = content[:at] + content[at:].replace("初診料".encode("cp932"), b"\x81\xfd", 1)
        files[2] = FixtureFile("ef_in", OTHER_FACILITY, files[2].path, bad, files[2].records)
    elif kind == "d code":
        d[25] = dpc.row("d", order_no="26", dpc_code="05013")
        files[3] = dpc.file("d", d, header=False)
    elif kind == "d control":
        d[18] = dpc.row("d", order_no="19", item_name="a\x0bb")
        files[3] = dpc.file("d", d, header=False)
    elif kind == "y1 fields":
        y1[19] = dpc.row("y1", patient_id="0000000020")[:-1]
        files[0] = dpc.file("y1", y1)
    elif kind == "y1 block repeated":  # the first case's block again, pieces later
        files[0] = dpc.file("y1", [*y1, y1[0]])
    elif kind == "two errors in two files":  # the earlier file in staging order wins
        d[10] = dpc.row("d", order_no="11", dpc_code="x")
        files[3] = dpc.file("d", d, header=False)
        ef[25] = dpc.row("ef_in", order_no="26", discharge_date="20259999")
        files[1] = dpc.file("ef_in", ef)
    return files


@pytest.mark.parametrize(
    "kind",
    ["ef date", "second ef cp932", "d code", "d control", "y1 fields", "y1 block repeated", "two errors in two files"],
)
def test_a_bad_line_in_a_later_piece_fails_like_the_line_by_line_path_and_nothing_is_staged_or_sent(
    in_pieces, aws, cfg, backend, s3fs_, client, data_api, kind
):
    files = broken(Dpc(), kind)
    manifest = validated(backend, s3fs_, files)
    expected = refused_line_by_line(s3fs_, backend, manifest)  # the line-by-line path
    content = next(f.content for f in files if f.path == expected.file)
    assert line_start(content, expected.line) > 2 * PIECE_BYTES, "the bad line lies in a later piece"

    error = refused(s3fs_, backend, manifest)
    with pytest.raises(RawFileError) as through_the_step:
        backend.load_month(YYYYMM, manifest)

    for got in (error, through_the_step.value):
        assert (got.file, got.line, got.rule, got.detail) == (
            expected.file,
            expected.line,
            expected.rule,
            expected.detail,
        )
        assert str(got) == str(expected)
    assert staged_keys(client) == []
    assert data_api.sent == []


@pytest.mark.parametrize("replacement", ["other valid lines", "a bad line"])
def test_an_object_replaced_after_validation_is_refused_like_the_line_by_line_path(
    in_pieces, aws, cfg, backend, s3fs_, client, replacement
):
    dpc = Dpc()
    files = delivery(dpc)
    manifest = validated(backend, s3fs_, files)
    ef = [dpc.row("ef_in", order_no=str(n)) for n in range(1, 40)]
    if replacement == "a bad line":
        ef[30] = dpc.row("ef_in", order_no="31", admission_date="2025041")
    client.put_object(Bucket=BUCKET, Key=f"raw/yyyymm={YYYYMM}/{files[1].path}", Body=dpc.file("ef_in", ef).content)
    expected = refused_line_by_line(s3fs_, backend, manifest)
    assert expected.file == files[1].path
    assert expected.rule == (rawfile.RULE_SHA_CHANGED if replacement == "other valid lines" else rawfile.RULE_DATE)

    error = refused(s3fs_, backend, manifest)

    assert str(error) == str(expected) and (error.line, error.rule) == (expected.line, expected.rule)
    assert staged_keys(client) == []


def test_an_object_replaced_while_its_pieces_are_read_is_refused(
    in_pieces, aws, cfg, backend, s3fs_, client, monkeypatch
):
    """The task's read hashes the validated bytes, then the object is replaced before any worker reads a
    piece: every piece's GET carries IfMatch with the ETag the task's read saw, S3 answers 412, and the
    month is refused as a changed file — nothing staged from the other version."""
    files = delivery()
    manifest = validated(backend, s3fs_, files)
    ef_key = f"raw/yyyymm={YYYYMM}/{files[1].path}"
    real_client = pieces.S3Access.client

    class ReplacedAfterTheTasksRead:
        def __init__(self, access):
            self.s3 = real_client(access)

        def get_object(self, **request):
            response = self.s3.get_object(**request)
            if request["Key"] == ef_key and "Range" not in request:  # the task's whole-object read
                response["Body"] = io.BytesIO(response["Body"].read())
                self.s3.put_object(Bucket=BUCKET, Key=ef_key, Body=files[1].content + files[1].content)
            return response

        def __getattr__(self, name):
            return getattr(self.s3, name)

    monkeypatch.setattr(pieces.S3Access, "client", lambda access: ReplacedAfterTheTasksRead(access))

    error = refused(s3fs_, backend, manifest)

    assert (error.file, error.line, error.rule) == (files[1].path, None, rawfile.RULE_SHA_CHANGED)
    assert staged_keys(client) == []


def test_a_piece_is_read_only_from_the_version_it_was_given(aws, client, monkeypatch):
    """The worker's side of the pin: IfMatch with the ETag of the task's read, in moto as in S3."""
    content = Dpc().file("d", [Dpc().row("d", order_no=str(n)) for n in (1, 2, 3)], header=False).content
    source = S3Uri(BUCKET, f"raw/yyyymm={YYYYMM}/Dn_131000123_2504.txt")
    etag = client.put_object(Bucket=BUCKET, Key=source.key, Body=content)["ETag"]
    access = pieces.s3_access(CONN_ID)
    monkeypatch.setattr(pieces, "_worker_s3", access.client())
    span = rawfile.PieceSpan(0, len(content), 1)
    second_line = content.index(b"\n") + 1
    later = rawfile.PieceSpan(second_line, len(content), 2)

    def job(span, etag, name):
        return pieces.PieceJob(source, etag, span, "d", YYYYMM, S3Uri(BUCKET, f"{STAGING_PREFIX}{name}"))

    whole = pieces.stage_piece(job(span, etag, "whole.tsv"))
    tail = pieces.stage_piece(job(later, etag, "tail.tsv"))
    client.put_object(Bucket=BUCKET, Key=source.key, Body=content.replace(b"20250401", b"20250402"))
    stale = pieces.stage_piece(job(span, etag, "stale.tsv"))

    assert (whole.records, whole.first_record_line, whole.changed) == (3, 1, False)
    assert (tail.records, tail.first_record_line) == (2, 2)
    assert (
        read(client, f"s3://{BUCKET}/{STAGING_PREFIX}tail.tsv")
        .decode("utf-8")
        .startswith(f"{YYYYMM}\t{source.name}\t2\t")
    )
    assert stale.changed and stale.records == 0
    assert sorted(staged_keys(client)) == [f"{STAGING_PREFIX}tail.tsv", f"{STAGING_PREFIX}whole.tsv"]


# ------------------------------------------------------------------------------- where it runs


def test_the_workers_get_the_connections_credentials_and_no_log_line_holds_the_secret(
    in_pieces, aws, cfg, backend, s3fs_, monkeypatch
):
    secret = "never-in-a-log-9f2c41"
    conn = {"conn_type": "aws", "login": "AKIDPIECES", "password": secret}
    conn["extra"] = {"region_name": REGION, "endpoint_url": aws.endpoint}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    manifest = validated(backend, s3fs_, delivery())

    access = pieces.s3_access(CONN_ID)

    assert (access.access_key_id, access.secret_access_key, access.session_token) == ("AKIDPIECES", secret, None)
    assert (access.region, access.endpoint_url) == (REGION, aws.endpoint)
    assert secret not in repr(access) and "AKIDPIECES" not in repr(access)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    root, handler = logging.getLogger(), Collect(level=logging.DEBUG)
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        staged = load.stage_month(s3fs_, backend.where, YYYYMM, manifest)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    assert len(staged["files"]) > len(delivery())  # staged in pieces, by the workers
    assert any("copy_raw staged 4 files in" in line for line in lines)
    assert not [line for line in lines if secret in line]


@pytest.mark.parametrize(
    ("files", "cpus"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_a_containers_cpu_quota_caps_the_workers(tmp_path, files, cpus):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert pieces.cgroup_cpu_limit(tmp_path) == cpus
