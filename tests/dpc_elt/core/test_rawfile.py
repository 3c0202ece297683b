"""Streaming transcoding and line checks of raw files (contract §1, §2 load rules)."""

from __future__ import annotations

import hashlib
import io

import pytest

from dpc_elt.core import formats, rawfile
from dpc_elt.core.errors import ParameterError, RawFileError
from dpc_elt.core.manifest import scan_file

SECRET = "ﾋﾐﾂ秘密"  # a distinctive value that must never reach an error message
EF_NAME = "EFn_131000123_2504.txt"


def stage(data: bytes, file_type: str = "ef_in", **kw) -> tuple[rawfile.StagedFile, str]:
    out = io.StringIO(newline="\n")
    kw.setdefault("source_file", formats.LAYOUTS[file_type].file_name("131000123", "202504"))
    kw.setdefault("yyyymm", "202504")
    result = rawfile.stage_raw_file(io.BytesIO(data), out, file_type=file_type, **kw)
    return result, out.getvalue()


def fails(data: bytes, file_type: str = "ef_in", **kw) -> RawFileError:
    with pytest.raises(RawFileError) as exc:
        stage(data, file_type, **kw)
    return exc.value


# ----------------------------------------------------------------------------------- happy path


def test_ef_happy_path_exact_output(dpc):
    rows = [
        dpc.row("ef_in", item_name="初診料（入院）", unit_code="ｶﾞｰｾﾞ"),
        dpc.row("ef_in", order_no="2", discharge_date="00000000", performed_date="", facility_type=""),
        dpc.row("ef_in", order_no="3", discharge_date="99999999", item_name="①髙﨑ﾃｽﾄ"),
    ]
    data = dpc.encode([dpc.header("ef_in"), *rows])
    result, out = stage(data, staged_path="/work/x.tsv")

    expected = "".join(f"202504\t{EF_NAME}\t{n}\t" + "\t".join(r) + "\n" for n, r in zip((2, 3, 4), rows, strict=True))
    assert out == expected
    assert "初診料（入院）" in out and "ｶﾞｰｾﾞ" in out and "①髙﨑ﾃｽﾄ" in out
    assert result == rawfile.StagedFile(
        file_type="ef_in",
        source_file=EF_NAME,
        records=3,
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        staged_path="/work/x.tsv",
    )
    # the columns are formats.LINEAGE_COLUMNS + layout.columns
    for line in out.splitlines():
        assert len(line.split("\t")) == len(formats.LINEAGE_COLUMNS) + formats.EF_IN.column_count


def test_y1_and_d_happy_path(dpc):
    y1_rows = [
        dpc.row("y1"),
        dpc.row("y1", item_code="A000020", payload_1="20250401", payload_5="100"),
        dpc.row("y1", item_code="A000030", payload_1="20250410"),
        dpc.row("y1", item_code="A000070", payload_1=""),  # payload dates may be empty
        dpc.row("y1", item_code="A006010", payload_1="not a date", payload_2="I509", payload_9="心不全"),
        dpc.row("y1", summary_no="A", item_code="A000010", payload_1="00000000"),
    ]
    result, out = stage(dpc.encode([dpc.header("y1"), *y1_rows]), "y1")
    assert result.records == 6
    assert out.splitlines()[4].endswith("\t".join(y1_rows[4]))
    assert out.splitlines()[0].startswith("202504\tFF1_131000123_2504.txt\t2\t131000123\t")

    d_rows = [dpc.row("d"), dpc.row("d", calc_end_date="", dpc_code="050130xx99000x", item_name="ＤＰＣ")]
    result, out = stage(dpc.encode(d_rows), "d")
    assert result.records == 2
    assert out == "".join(
        f"202504\tDn_131000123_2504.txt\t{n}\t" + "\t".join(r) + "\n" for n, r in enumerate(d_rows, 1)
    )


def test_no_header_line_numbers_start_at_one(dpc):
    _, out = stage(dpc.encode([dpc.row("ef_in"), dpc.row("ef_in")]))
    assert [line.split("\t")[2] for line in out.splitlines()] == ["1", "2"]


def test_half_width_header_is_skipped(dpc):
    result, out = stage(dpc.encode([dpc.header("ef_in", "ﾃﾞｰﾀ識別番号"), dpc.row("ef_in")]))
    assert result.records == 1
    assert out.split("\t")[2] == "2"


@pytest.mark.parametrize(
    "data",
    [b"", "施設コード\tデータ識別番号\r\n".encode("cp932"), "施設コード\tデータ識別番号".encode("cp932")],
    ids=["empty", "header-crlf", "header-no-eol"],
)
def test_no_data_lines_is_fine(data):
    result, out = stage(data)
    assert (result.records, out, result.bytes) == (0, "", len(data))
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_truncated_last_line_is_accepted(dpc):
    rows = [dpc.row("ef_in"), dpc.row("ef_in", order_no="2")]
    result, out = stage(dpc.encode(rows, final_newline=False))
    assert result.records == 2
    assert out.endswith("\t".join(rows[1]) + "\n")


def test_last_line_cut_between_cr_and_lf_is_accepted(dpc):
    data = dpc.encode([dpc.row("ef_in"), dpc.row("ef_in")])[:-1]
    assert data.endswith(b"\r")
    result, out = stage(data)
    assert result.records == 2
    assert "\r" not in out


def test_lf_only_and_mixed_line_endings(dpc):
    rows = [dpc.row("ef_in"), dpc.row("ef_in", order_no="2"), dpc.row("ef_in", order_no="3")]
    lf = dpc.encode(rows, newline="\n")
    mixed = dpc.encode(rows[:2]) + dpc.encode(rows[2:], newline="\n")
    crlf_out = stage(dpc.encode(rows))[1]
    assert stage(lf)[1] == crlf_out
    assert stage(mixed)[1] == crlf_out
    assert "\r" not in crlf_out


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1000])
def test_small_chunks_give_the_same_result(dpc, chunk):
    rows = [dpc.row("ef_in", order_no=str(i), item_name="ｱｲｳ漢字かな" * i) for i in range(1, 30)]
    data = dpc.encode([dpc.header("ef_in"), *rows])
    assert stage(data, chunk_bytes=chunk) == stage(data)
    bad = dpc.encode([dpc.header("ef_in"), *rows[:20], rows[20][:-1], *rows[21:]])
    assert fails(bad, chunk_bytes=chunk).line == 22


def test_record_count_agrees_with_manifest_scan(dpc):
    rows = [dpc.row("ef_in"), dpc.row("ef_in")]
    for data in (
        dpc.encode([dpc.header("ef_in"), *rows]),
        dpc.encode(rows, final_newline=False),
        dpc.encode(rows, newline="\n"),
        dpc.encode([dpc.header("ef_in")]),
    ):
        staged, _ = stage(data)
        assert scan_file(io.BytesIO(data))[1:] == (staged.bytes, staged.records)


def test_expected_sha256_matches(dpc):
    data = dpc.encode([dpc.row("ef_in")])
    result, _ = stage(data, expected_sha256=hashlib.sha256(data).hexdigest().upper())
    assert result.records == 1


def test_sha256_mismatch_is_detected(dpc):
    data = dpc.encode([dpc.row("ef_in", item_name=SECRET)])
    exc = fails(data, expected_sha256=hashlib.sha256(data + b"x").hexdigest())
    assert exc.rule == rawfile.RULE_SHA_CHANGED == "file changed since validation (sha256)"
    assert exc.file == EF_NAME and exc.line is None


# ---------------------------------------------------------------------------------- line rules


def test_wrong_field_count_names_the_line(dpc):
    rows = [dpc.row("ef_in"), dpc.row("ef_in")[:-1], dpc.row("ef_in")]
    exc = fails(dpc.encode([dpc.header("ef_in"), *rows]))
    assert (exc.file, exc.line, exc.rule) == (EF_NAME, 3, rawfile.RULE_FIELD_COUNT)
    assert "expected 31 fields, found 30" in str(exc)
    assert str(exc).startswith(f"{EF_NAME}:3: wrong number of fields")


def test_too_many_fields(dpc):
    exc = fails(dpc.encode([[*dpc.row("d"), SECRET]]), "d")
    assert (exc.line, exc.rule) == (1, rawfile.RULE_FIELD_COUNT)
    assert "expected 30 fields, found 31" in str(exc)


def test_empty_line(dpc):
    data = dpc.encode([dpc.row("ef_in")]) + b"\r\n" + dpc.encode([dpc.row("ef_in")])
    exc = fails(data)
    assert (exc.line, exc.rule) == (2, rawfile.RULE_EMPTY_LINE)


@pytest.mark.parametrize(
    ("file_type", "column", "value"),
    [
        ("ef_in", "admission_date", "20250231"),
        ("ef_in", "discharge_date", "20250431"),
        ("ef_in", "admission_date", ""),  # required: never empty
        ("ef_in", "admission_date", "2025041"),
        ("ef_in", "admission_date", "2025-4-1"),
        ("ef_in", "admission_date", "２０２５０４０１"),  # full-width digits
        ("ef_in", "admission_date", "00000001"),
        ("ef_in", "performed_date", "20251301"),
        ("ef_in", "performed_date", " "),
        ("d", "calc_end_date", "20250230"),
        ("d", "performed_date", "2025040"),
        ("y1", "admission_date", "20240230"),
    ],
)
def test_impossible_date(dpc, file_type, column, value):
    rows = [dpc.row(file_type), dpc.row(file_type), dpc.row(file_type, **{column: value})]
    exc = fails(dpc.encode(rows), file_type)
    assert (exc.line, exc.rule) == (3, rawfile.RULE_DATE)
    assert f"column {column}" in str(exc)


@pytest.mark.parametrize("item_code", sorted(formats.Y1_DATE_PAYLOADS))
def test_impossible_y1_payload_date(dpc, item_code):
    rows = [dpc.row("y1", item_code=item_code, payload_1="19991332")]
    exc = fails(dpc.encode([dpc.header("y1"), dpc.row("y1"), *rows]), "y1")
    assert (exc.line, exc.rule) == (3, rawfile.RULE_DATE)
    assert "column payload_1" in str(exc)
    assert "19991332" not in str(exc)


def test_y1_payload_of_other_item_codes_is_not_a_date(dpc):
    rows = [dpc.row("y1", item_code="A006010", payload_1="19991332")]
    assert stage(dpc.encode(rows), "y1")[0].records == 1


def test_leap_day_and_sentinels(dpc):
    rows = [
        dpc.row("ef_in", admission_date="20240229", discharge_date="00000000", performed_date="99999999"),
        dpc.row("ef_in", admission_date="99999999", discharge_date="99999999", performed_date="00000000"),
    ]
    assert stage(dpc.encode(rows))[0].records == 2
    exc = fails(dpc.encode([dpc.row("ef_in", admission_date="20250229")]))
    assert exc.rule == rawfile.RULE_DATE


# ----------------------------------------------------------------------------------- byte rules


def test_utf8_bom(dpc):
    data = b"\xef\xbb\xbf" + dpc.encode([dpc.row("ef_in")])
    exc = fails(data)
    assert (exc.line, exc.rule) == (1, "UTF-8 byte order mark: file must be cp932")


@pytest.mark.parametrize(
    "bad",
    [b"\x81\x20", b"\x82", b"\x80", b"\xa0", b"\xfd", b"\xff"],
    ids=["bad-trail", "lone-lead", "0x80", "0xa0", "0xfd", "0xff"],
)
def test_bytes_not_valid_cp932(dpc, bad):
    good = dpc.encode([dpc.row("ef_in")])
    line = dpc.encode([dpc.row("ef_in", item_name="X")]).replace(b"\tX\t", b"\t" + bad + b"\t")
    exc = fails(good + good + line)
    assert (exc.line, exc.rule) == (3, rawfile.RULE_NOT_CP932)


@pytest.mark.parametrize("text", ["日本語", "ガーゼ", "点滴 5mg ガーゼ"], ids=["not-cp932", "also-cp932", "mixed"])
def test_utf8_text_is_rejected_even_when_it_is_valid_cp932(dpc, text):
    good = dpc.encode([dpc.row("ef_in", item_name="初診料（入院）")])
    line = dpc.encode([dpc.row("ef_in", item_name="X")]).replace(b"\tX\t", b"\t" + text.encode() + b"\t")
    exc = fails(good + good + line + good)
    assert (exc.line, exc.rule) == (3, rawfile.RULE_UTF8)
    assert str(exc) == f"{EF_NAME}:3: {rawfile.RULE_UTF8}"


def test_an_earlier_bad_line_wins_over_utf8_text(dpc):
    good = dpc.encode([dpc.row("ef_in")])
    utf8 = dpc.encode([dpc.row("ef_in", item_name="X")]).replace(b"\tX\t", b"\t" + "ガーゼ".encode() + b"\t")
    exc = fails(good + b"too\tfew\r\n" + utf8)
    assert (exc.line, exc.rule) == (2, rawfile.RULE_FIELD_COUNT)


@pytest.mark.parametrize("chunk", [7, 4096])
def test_genuine_cp932_japanese_is_not_taken_for_utf8(dpc, chunk):
    names = ["初診料（入院）", "ｶﾞｰｾﾞ", "①髙﨑ﾃｽﾄ", "ﾃｰ", "点滴注射", "ソルラクト輸液５００ｍＬ", "ぁぁ"]
    rows = [dpc.row("ef_in", order_no=str(n), item_name=name) for n, name in enumerate(names, 1)]
    result, _ = stage(dpc.encode(rows), chunk_bytes=chunk)
    assert result.records == len(names)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["初診料", "点滴注射", "ｶﾞｰｾﾞ"], None),  # every line cp932 Japanese
        (["初診料", "ascii only", "点滴注射"], None),  # a line without Japanese is not UTF-8 text
        (["初診料", "点滴注射", "ガーゼ\u3000utf8"], 2),  # the last line, without its line feed
        (["初診料", "ガーゼ\u3000utf8", "点滴注射", ""], 1),
    ],
    ids=["all-cp932", "with-ascii", "last-utf8-no-lf", "middle-utf8"],
)
def test_first_utf8_line_of_a_block(lines, expected):
    utf8 = [line for line in lines if "utf8" in line]
    data = b"\n".join(line.encode() if line in utf8 else line.encode("cp932") for line in lines)
    assert rawfile.first_utf8_line(data) == expected


def test_nul_byte(dpc):
    good = dpc.encode([dpc.row("ef_in")])
    line = dpc.encode([dpc.row("ef_in", item_name="A")]).replace(b"\tA\t", b"\tA\x00B\t")
    exc = fails(good + line)
    assert (exc.line, exc.rule) == (2, "NUL byte")


@pytest.mark.parametrize(
    ("char", "rule"),
    [
        ("\r", rawfile.RULE_STRAY_CR),
        ("\x01", rawfile.RULE_CONTROL),
        ("\x1b", rawfile.RULE_CONTROL),
        ("\x7f", rawfile.RULE_CONTROL),
    ],
)
def test_control_characters(dpc, char, rule):
    good = dpc.encode([dpc.row("ef_in")])
    exc = fails(good + dpc.encode([dpc.row("ef_in", item_name=f"a{char}b")]) + good)
    assert (exc.line, exc.rule) == (2, rule)


def test_line_too_long(dpc, monkeypatch):
    monkeypatch.setattr(rawfile, "MAX_LINE_BYTES", 300)
    row = dpc.row("ef_in")
    ok = dpc.encode([row])
    assert len(ok) < 300
    assert stage(ok * 3, chunk_bytes=64)[0].records == 3
    long_line = dpc.encode([dpc.row("ef_in", item_name="x" * 400)])
    exc = fails(ok + long_line, chunk_bytes=64)
    assert (exc.line, exc.rule) == (2, rawfile.RULE_LINE_TOO_LONG)


# --------------------------------------------------------------------------- no values in errors


@pytest.mark.parametrize(
    "make",
    [
        lambda d: d.encode([d.row("ef_in", item_name=SECRET)[:-1]]),
        lambda d: d.encode([d.row("ef_in", admission_date=SECRET)]),
        lambda d: d.encode([d.row("ef_in", performed_date=SECRET)]),
        lambda d: d.encode([d.row("ef_in", item_name=SECRET + "\x01")]),
        lambda d: d.encode([d.row("ef_in", item_name=SECRET + "\r")]),
        lambda d: d.encode([d.row("ef_in", item_name=SECRET)]) + SECRET.encode("utf-8"),
        lambda d: d.encode([d.row("ef_in", patient_id=SECRET)]).replace(b"\t", b"\x00\t", 1),
    ],
)
def test_errors_never_contain_field_values(dpc, make):
    exc = fails(make(dpc))
    assert SECRET not in str(exc)
    assert all(SECRET not in str(a) for a in exc.args)
    assert SECRET not in (exc.detail + exc.rule)


def test_y1_payload_error_has_no_value(dpc):
    exc = fails(dpc.encode([dpc.row("y1", item_code="A000030", payload_1=SECRET)]), "y1")
    assert exc.rule == rawfile.RULE_DATE and SECRET not in str(exc)


# ------------------------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    "kw",
    [
        {"file_type": "ef"},
        {"yyyymm": "202513"},
        {"yyyymm": "2504"},
        {"source_file": "a\tb"},
        {"source_file": ""},
        {"chunk_bytes": 0},
    ],
)
def test_bad_arguments(kw):
    args = {"file_type": "ef_in", "source_file": EF_NAME, "yyyymm": "202504", **kw}
    with pytest.raises(ParameterError):
        rawfile.stage_raw_file(io.BytesIO(b""), io.StringIO(), **args)


def test_is_valid_date():
    assert rawfile.is_valid_date("20240229") and rawfile.is_valid_date("00000000")
    assert rawfile.is_valid_date("99999999")
    for bad in ("20230229", "20251301", "20250400", "00010000", "", "2025040１", "2025-04-01"):
        assert not rawfile.is_valid_date(bad)


# ------------------------------------------------------------------- pieces read once, lines numbered


def cut(data: bytes, piece_bytes: int, feed_bytes: int) -> list[rawfile.PieceSpan]:
    """The pieces a PieceCutter gives when fed ``data`` in blocks of ``feed_bytes``."""
    cutter = rawfile.PieceCutter(piece_bytes)
    spans = [span for at in range(0, len(data), feed_bytes) for span in cutter.feed(data[at : at + feed_bytes])]
    return spans + cutter.finish()


CUT_CASES = {
    "lines": b"".join(b"line %d\r\n" % n for n in range(1, 60)),
    "last line without LF": b"a\nbb\nccc\ndddd",
    "one long line": b"x" * 700 + b"\n" + b"short\n",
    "only line feeds": b"\n" * 40,
    "no line feed": b"no line feed at all",
    "empty": b"",
}


@pytest.mark.parametrize("case", CUT_CASES)
@pytest.mark.parametrize("piece_bytes", [1, 7, 50, 300, 10**6])
@pytest.mark.parametrize("feed_bytes", [1, 13, 4096])
def test_the_piece_cutter_cuts_as_piece_bounds_and_numbers_each_first_line(case, piece_bytes, feed_bytes):
    data = CUT_CASES[case]
    spans = cut(data, piece_bytes, feed_bytes)
    assert [(s.start, s.end) for s in spans] == rawfile.piece_bounds(io.BytesIO(data), len(data), piece_bytes)
    assert [s.first_line_no for s in spans] == [data.count(b"\n", 0, s.start) + 1 for s in spans]


def stage_in_pieces(data: bytes, file_type: str, piece_bytes: int) -> list[tuple[str, rawfile.StagedPiece]]:
    """Every piece of ``data`` staged on its own with stage_piece: its rows and its result, in order."""
    staged = []
    for span in cut(data, piece_bytes, 4096):
        out = io.StringIO(newline="\n")
        result = rawfile.stage_piece(
            io.BytesIO(data[span.start : span.end]),
            out,
            file_type=file_type,
            source_file=formats.LAYOUTS[file_type].file_name("131000123", "202504"),
            yyyymm="202504",
            first_line_no=span.first_line_no,
        )
        staged.append((out.getvalue(), result))
    return staged


@pytest.mark.parametrize("file_type", ["y1", "ef_in", "d"])
def test_pieces_staged_apart_hold_exactly_the_rows_of_the_whole_file(dpc, file_type):
    body = [dpc.row(file_type, order_no=str(n)) if file_type != "y1" else dpc.row("y1") for n in range(1, 30)]
    if file_type == "ef_in":
        body[4] = dpc.row("ef_in", order_no="5", item_name="ｶﾞｰｾﾞ①髙﨑", performed_date="")
    data = dpc.encode([dpc.header(file_type), *body], final_newline=False)  # the last line without CRLF
    staged, whole = stage(data, file_type)

    pieces = stage_in_pieces(data, file_type, 300)

    assert len(pieces) > 5 and "".join(rows for rows, _ in pieces) == whole
    assert sum(result.records for _, result in pieces) == staged.records == len(body)
    assert sum(result.lines for _, result in pieces) == len(body) + 1  # the header is a line, not a row
    for rows, result in pieces:  # the line_no column of the piece's first row; 0 for a piece of a header only
        assert result.first_record_line == (int(rows.split("\t", 3)[2]) if rows else 0)
    assert next(result for _, result in pieces if result.records).first_record_line == 2


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("date", rawfile.RULE_DATE),
        ("fields", rawfile.RULE_FIELD_COUNT),
        ("control", rawfile.RULE_CONTROL),
        ("header again", rawfile.RULE_DATE),
        ("utf8", rawfile.RULE_UTF8),
    ],
)
def test_a_bad_line_in_a_later_piece_names_the_files_line(dpc, line, rule):
    rows = [dpc.encode([dpc.row("ef_in", order_no=str(n))]) for n in range(1, 40)]
    rows[30] = {
        "date": dpc.encode([dpc.row("ef_in", performed_date="20250431")]),
        "fields": dpc.encode([dpc.row("ef_in")[:-2]]),
        "control": dpc.encode([dpc.row("ef_in", item_name="a\x0bb")]),
        "header again": dpc.encode([dpc.header("ef_in")]),  # only the file's first line may be a header
        "utf8": "\t".join(dpc.row("ef_in", item_name="初診料")).encode("utf-8") + b"\r\n",
    }[line]
    data = dpc.encode([dpc.header("ef_in")]) + b"".join(rows)
    whole = fails(data)
    with pytest.raises(RawFileError) as raised:
        stage_in_pieces(data, "ef_in", 300)
    assert data.rfind(rows[30]) > 3 * 300, "the bad line is in a later piece"
    assert (raised.value.file, raised.value.line, raised.value.rule) == (whole.file, 32, rule)
    assert str(raised.value) == str(whole)


def test_a_piece_needs_a_line_number():
    with pytest.raises(ParameterError, match="first_line_no"):
        rawfile.stage_piece(
            io.BytesIO(b""), io.StringIO(), file_type="d", source_file=EF_NAME, yyyymm="202504", first_line_no=0
        )
    with pytest.raises(ParameterError, match="piece_bytes"):
        rawfile.PieceCutter(0)
