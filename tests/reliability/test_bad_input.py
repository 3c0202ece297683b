"""Bad input catalog: every way a delivery can be wrong, one test each.

Each case starts from a warehouse holding two months that went through every step (``loaded``), breaks
a delivery of 202504 (a reload: the month is already there) or 202505 (a new month), and runs what
``validate_manifest`` and ``copy_raw`` run. A rejected delivery must name the file, the line where
there is one and the rule — never a field value — and leave every table (raw, stage, mart, ref) and
every export exactly as they were. Deliveries a user would expect to pass (an unlisted extra file, a
last line without line ending, an empty or header-only file, EF rows of a case not in y1, a BOM in
the manifest) load, and touch no other month.
"""

from __future__ import annotations

import json

import pytest

from dpc_elt.core import manifest, rawfile
from dpc_elt.core.errors import DpcInputError, ManifestError, RawFileError
from tests.reliability import support
from tests.reliability.support import FAC_A

RELOAD = "202504"
Y1 = f"FF1_{FAC_A}_2504.txt"
EF = f"EFn_{FAC_A}_2504.txt"
D = f"Dn_{FAC_A}_2504.txt"


ANY_LINE = object()


def rejected(cfg, yyyymm: str, error: type[DpcInputError], rule: str | tuple[str, ...], *, file: str, line=None):
    """Run validate + load; it must raise ``error`` naming ``file``, ``line`` and ``rule`` and change nothing."""
    tables, exports = _baseline["tables"], _baseline["exports"]  # what ``loaded`` holds before the test
    assert tables and exports, "the baseline must hold loaded months"
    with pytest.raises(error) as info:
        support.load_raw(cfg, yyyymm)
    err = info.value
    assert err.rule in ((rule,) if isinstance(rule, str) else rule), str(err)
    assert err.file.rsplit("/", 1)[-1] == file, str(err)
    if line is ANY_LINE:
        assert isinstance(err.line, int) and err.line > 0, str(err)
    else:
        assert err.line == line, str(err)
    where = f"{err.file}:{err.line}" if err.line is not None else err.file
    assert str(err).startswith(f"{where}: {err.rule}")
    ids, names = support.patient_values(cfg.raw_root)
    assert not support.leaked(str(err), ids, names), str(err)
    assert support.fingerprint(cfg) == tables, "a rejected delivery changed the warehouse"
    assert support.export_content(cfg) == exports, "a rejected delivery changed an export"
    return err


_baseline: dict[str, dict] = {}


@pytest.fixture(autouse=True, scope="module")
def _baseline_state(loaded_base):
    """Fingerprint of ``loaded_base`` once: every ``loaded`` copy starts byte-identical to it."""
    _baseline.update(tables=support.fingerprint(loaded_base), exports=support.export_content(loaded_base))


def accepted(cfg, yyyymm: str) -> dict[str, int]:
    """Run validate + load; it must pass and leave every other month as it was."""
    others = support.fingerprint_without(cfg, yyyymm)
    counts = support.load_raw(cfg, yyyymm)
    assert support.fingerprint_without(cfg, yyyymm) == others
    assert not support.duplicates(cfg)
    return counts


def raw_rows(cfg, table: str, yyyymm: str) -> list[tuple]:
    with support.connect(cfg) as con:
        return con.execute(
            f'select source_file, line_no from "raw".{table} where yyyymm = ? order by 1, 2', [yyyymm]
        ).fetchall()


def new_month(cfg) -> str:
    """A delivery of 202505 (never loaded): the scenario's stays rendered for that month."""
    support.write_scenario(cfg.raw_root, ["202505"])
    return "202505"


def set_field(index: int, value: bytes):
    def edit(line: bytes) -> bytes:
        fields = line.split(b"\t")
        fields[index] = value
        return b"\t".join(fields)

    return edit


# ----------------------------------------------------------------------------------- manifest


def test_missing_manifest(loaded):
    (support.month_dir(loaded, RELOAD) / "_manifest.json").unlink()
    rejected(loaded, RELOAD, ManifestError, manifest.RULE_MANIFEST_MISSING, file="_manifest.json")


def test_missing_month_folder(loaded):
    err = rejected(loaded, "202506", ManifestError, manifest.RULE_MANIFEST_MISSING, file="_manifest.json")
    assert "month folder missing" in str(err)


def test_manifest_not_valid_json_names_line_and_column(loaded):
    text = json.dumps(support.read_manifest(loaded, RELOAD), indent=2)
    support.write_manifest(loaded, RELOAD, text[: len(text) // 2].encode())  # cut in the middle
    err = rejected(loaded, RELOAD, ManifestError, manifest.RULE_INVALID_JSON, file="_manifest.json", line=ANY_LINE)
    assert err.detail.startswith("column ")


def test_manifest_not_utf8(loaded):
    data = json.dumps(support.read_manifest(loaded, RELOAD), ensure_ascii=False).encode()
    support.write_manifest(loaded, RELOAD, data.replace(b'"2025-05', b'"\x93\x8c2025-05'))  # cp932 bytes
    err = rejected(loaded, RELOAD, ManifestError, manifest.RULE_INVALID_JSON, file="_manifest.json", line=1)
    assert "not UTF-8" in str(err)


def test_schema_missing_property(loaded):
    doc = support.read_manifest(loaded, RELOAD)
    del doc["files"][1]["records"]
    support.write_manifest(loaded, RELOAD, doc)
    rejected(loaded, RELOAD, ManifestError, "files[1]: missing required property records", file="_manifest.json")


def test_schema_wrong_type_and_format(loaded):
    doc = support.read_manifest(loaded, RELOAD)
    doc["files"][0]["bytes"] = str(doc["files"][0]["bytes"])
    doc["files"][0]["sha256"] = doc["files"][0]["sha256"].upper()
    support.write_manifest(loaded, RELOAD, doc)
    err = rejected(loaded, RELOAD, ManifestError, "files[0].bytes: must be of type integer", file="_manifest.json")
    assert "1 more schema error(s)" in str(err)


def test_schema_unknown_file_type(loaded):
    doc = support.read_manifest(loaded, RELOAD)
    doc["files"][0]["file_type"] = "ef_out"
    support.write_manifest(loaded, RELOAD, doc)
    rejected(loaded, RELOAD, ManifestError, "files[0].file_type: must be one of y1, ef_in, d", file="_manifest.json")


def test_schema_no_files(loaded):
    doc = support.read_manifest(loaded, RELOAD)
    doc["files"] = []
    support.write_manifest(loaded, RELOAD, doc)
    rejected(loaded, RELOAD, ManifestError, "files: fewer than 1 items", file="_manifest.json")


def test_yyyymm_differs_from_the_run(loaded):
    doc = support.read_manifest(loaded, RELOAD)
    doc["yyyymm"] = "202503"
    support.write_manifest(loaded, RELOAD, doc)
    rejected(loaded, RELOAD, ManifestError, manifest.RULE_MONTH_MISMATCH, file="_manifest.json")


def test_listed_file_missing(loaded):
    (support.month_dir(loaded, RELOAD) / EF).unlink()
    rejected(loaded, RELOAD, ManifestError, manifest.RULE_FILE_MISSING, file=EF)


def test_wrong_size(loaded):
    with open(support.month_dir(loaded, RELOAD) / D, "ab") as handle:
        handle.write(b"\r\n")
    rejected(loaded, RELOAD, ManifestError, manifest.RULE_SIZE, file=D)


def test_wrong_sha256_same_size(loaded):
    path = support.month_dir(loaded, RELOAD) / D
    data = path.read_bytes()
    assert b"1.4523" in data
    path.write_bytes(data.replace(b"1.4523", b"1.4524", 1))
    rejected(loaded, RELOAD, ManifestError, manifest.RULE_SHA256, file=D)


@pytest.mark.parametrize("delta", [-1, 1])
def test_wrong_record_count(loaded, delta):
    doc = support.read_manifest(loaded, RELOAD)
    entry = next(f for f in doc["files"] if f["path"] == Y1)
    entry["records"] += delta
    support.write_manifest(loaded, RELOAD, doc)
    rejected(loaded, RELOAD, ManifestError, manifest.RULE_RECORDS, file=Y1)


def test_empty_file_listed_with_records_is_rejected(loaded):
    """An empty file where the manifest promises data lines: a truncated transfer."""
    folder = support.month_dir(loaded, RELOAD)
    doc = support.read_manifest(loaded, RELOAD)
    entry = next(f for f in doc["files"] if f["path"] == EF)
    (folder / EF).write_bytes(b"")
    entry.update(support.manifest_entry("ef_in", FAC_A, EF, b""), records=entry["records"])
    support.write_manifest(loaded, RELOAD, doc)
    rejected(loaded, RELOAD, ManifestError, manifest.RULE_RECORDS, file=EF)


@pytest.mark.parametrize(
    ("listed_as", "name", "rule"),
    [
        ("y1", EF, manifest.RULE_NAME_FILE_TYPE),  # an EF file listed as y1
        ("y1", "ff1_131000123_2504.txt", manifest.RULE_NAME_FILE_TYPE),  # wrong case
        ("y1", "FF1_131000123_2504.csv", manifest.RULE_NAME_FILE_TYPE),
        ("y1", "FF1_13100012_2504.txt", manifest.RULE_NAME_FILE_TYPE),  # 8-digit facility
        ("y1", "FF1_555000555_2504.txt", manifest.RULE_NAME_FACILITY),  # listed with facility A's code
        ("y1", "FF1_131000123_2503.txt", manifest.RULE_NAME_MONTH),  # last month's file
    ],
)
def test_bad_file_name(loaded, listed_as, name, rule):
    folder = support.month_dir(loaded, RELOAD)
    doc = support.read_manifest(loaded, RELOAD)
    doc["files"] = [f for f in doc["files"] if f["path"] != name]
    entry = next(f for f in doc["files"] if f["path"] == Y1)
    if not (folder / name).exists():
        (folder / name).write_bytes((folder / Y1).read_bytes())
    entry.update(support.manifest_entry(listed_as, FAC_A, name, (folder / name).read_bytes()))
    support.write_manifest(loaded, RELOAD, doc)
    index = doc["files"].index(entry)
    rejected(loaded, RELOAD, ManifestError, f"files[{index}].path: {rule}", file="_manifest.json")


def test_same_file_listed_twice(loaded):
    doc = support.read_manifest(loaded, RELOAD)
    doc["files"].append(dict(doc["files"][0]))
    support.write_manifest(loaded, RELOAD, doc)
    last = len(doc["files"]) - 1
    rejected(
        loaded, RELOAD, ManifestError, f"files[{last}].path: {manifest.RULE_DUPLICATE_PATH}", file="_manifest.json"
    )


def test_duplicate_json_key(loaded):
    text = json.dumps(support.read_manifest(loaded, RELOAD))
    support.write_manifest(
        loaded, RELOAD, text.replace('"yyyymm": "202504"', '"yyyymm": "202504", "yyyymm": "202504"').encode()
    )
    err = rejected(loaded, RELOAD, ManifestError, manifest.RULE_INVALID_JSON, file="_manifest.json")
    assert "duplicate key" in str(err)


def test_utf8_bom_in_manifest_is_accepted(loaded):
    path = support.month_dir(loaded, RELOAD) / "_manifest.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    before = raw_rows(loaded, "y1", RELOAD)
    accepted(loaded, RELOAD)
    assert raw_rows(loaded, "y1", RELOAD) == before


def test_extra_unlisted_file_is_reported_and_not_loaded(loaded):
    folder = support.month_dir(loaded, RELOAD)
    # A well-formed y1 file of a third facility, and some junk, that the manifest does not list.
    (folder / "FF1_999000999_2504.txt").write_bytes((folder / Y1).read_bytes().replace(FAC_A.encode(), b"999000999"))
    (folder / "notes.xlsx").write_bytes(b"PK\x03\x04 not a DPC file")
    checked = manifest.validate_month(loaded.raw_root, RELOAD)
    assert checked.unlisted == ("FF1_999000999_2504.txt", "notes.xlsx")
    before = raw_rows(loaded, "y1", RELOAD)
    accepted(loaded, RELOAD)
    assert raw_rows(loaded, "y1", RELOAD) == before, "only listed files are loaded"


# ------------------------------------------------------------------------------ attacker input


@pytest.mark.parametrize(
    "path",
    [
        "../yyyymm=202503/FF1_131000123_2503.txt",
        "..",
        "/etc/passwd",
        "FF1_131000123_2504.txt/../../../../etc/passwd",
        "C:\\FF1_131000123_2504.txt",
        "FF1_131000123_2504.txt\x00.csv",
        "~root/FF1_131000123_2504.txt",
        "s3://other-bucket/FF1_131000123_2504.txt",
    ],
)
def test_path_traversal_in_manifest_path(loaded, path):
    doc = support.read_manifest(loaded, RELOAD)
    entry = next(f for f in doc["files"] if f["path"] == Y1)
    entry["path"] = path
    support.write_manifest(loaded, RELOAD, doc)
    where = f"files[{doc['files'].index(entry)}].path"
    rules = (f"{where}: does not match pattern", f"{where}: must not match: No parent reference")
    rejected(loaded, RELOAD, ManifestError, rules, file="_manifest.json")


def test_listed_file_is_a_symlink_to_outside(loaded, tmp_path):
    folder = support.month_dir(loaded, RELOAD)
    outside = tmp_path / "outside.txt"
    outside.write_bytes((folder / D).read_bytes())  # same bytes: size, hash and count all match
    (folder / D).unlink()
    (folder / D).symlink_to(outside)
    rejected(loaded, RELOAD, ManifestError, manifest.RULE_NOT_REGULAR_FILE, file=D)


def test_manifest_is_a_symlink(loaded, tmp_path):
    path = support.month_dir(loaded, RELOAD) / "_manifest.json"
    outside = tmp_path / "manifest.json"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    rejected(loaded, RELOAD, ManifestError, manifest.RULE_MANIFEST_NOT_FILE, file="_manifest.json")


def test_listed_path_is_a_directory(loaded):
    folder = support.month_dir(loaded, RELOAD)
    (folder / D).unlink()
    (folder / D).mkdir()
    rejected(loaded, RELOAD, ManifestError, manifest.RULE_NOT_REGULAR_FILE, file=D)


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("bytes", 10**30, "files[0].bytes: greater than maximum 1099511627776"),
        ("records", -1, "files[0].records: less than minimum 0"),
        ("records", 1e400, "files[0].records: greater than maximum 10000000000"),  # parses as float infinity
        ("bytes", 1.5, "files[0].bytes: must be of type integer"),
    ],
)
def test_huge_or_odd_numbers(loaded, field, value, rule):
    doc = support.read_manifest(loaded, RELOAD)
    doc["files"][0][field] = value
    support.write_manifest(loaded, RELOAD, json.dumps(doc).replace("Infinity", "1e400").encode())
    rejected(loaded, RELOAD, ManifestError, rule, file="_manifest.json")


def test_number_with_thousands_of_digits(loaded):
    text = json.dumps(support.read_manifest(loaded, RELOAD))
    support.write_manifest(loaded, RELOAD, text.replace('"records": ', '"records": ' + "9" * 5000, 1).encode())
    err = rejected(loaded, RELOAD, ManifestError, manifest.RULE_INVALID_JSON, file="_manifest.json")
    assert "number too long" in str(err)


def test_deeply_nested_json(loaded):
    support.write_manifest(loaded, RELOAD, b"[" * 200_000 + b"]" * 200_000)
    err = rejected(loaded, RELOAD, ManifestError, manifest.RULE_INVALID_JSON, file="_manifest.json")
    assert "nesting too deep" in str(err)


def test_manifest_too_large(loaded):
    doc = support.read_manifest(loaded, RELOAD)
    doc["padding"] = "x" * (manifest.MAX_MANIFEST_BYTES + 1)
    support.write_manifest(loaded, RELOAD, doc)
    rejected(loaded, RELOAD, ManifestError, manifest.RULE_MANIFEST_TOO_LARGE, file="_manifest.json")


def test_sql_and_csv_metacharacters_in_fields_are_plain_data(loaded):
    """Quotes, semicolons, SQL and a formula in a field load verbatim; no statement is built from them."""
    payload = "x'); drop table \"raw\".y1; --\"=cmd|' /C calc'!A0"
    name = support.rewrite_file(loaded, RELOAD, "EFn_", edit_line_field(2, 10, payload.encode("cp932")))
    accepted(loaded, RELOAD)
    with support.connect(loaded) as con:
        stored = con.execute(
            'select item_name from "raw".ef_in where yyyymm = ? and source_file = ? and line_no = 2', [RELOAD, name]
        ).fetchall()
        assert stored == [(payload,)]
        assert con.execute('select count(*) from "raw".y1').fetchone()[0] > 0


def edit_line_field(line: int, index: int, value: bytes):
    return support.edit_line(line, set_field(index, value))


# ------------------------------------------------------------------------------------ lines


def test_wrong_column_count_on_one_line(loaded):
    name = support.rewrite_file(loaded, RELOAD, "EFn_", support.edit_line(4, lambda line: line.rsplit(b"\t", 1)[0]))
    err = rejected(loaded, RELOAD, RawFileError, rawfile.RULE_FIELD_COUNT, file=name, line=4)
    assert err.detail == "expected 31 fields, found 30"


def test_line_cut_in_the_middle_is_rejected(loaded):
    """A transfer cut mid-line: the last line has too few fields (a missing line ending alone is fine)."""
    name = support.rewrite_file(loaded, RELOAD, "Dn_", lambda data: data[: data.rstrip(b"\r\n").rfind(b"\t")])
    lines = (support.month_dir(loaded, RELOAD) / name).read_bytes().count(b"\n") + 1
    rejected(loaded, RELOAD, RawFileError, rawfile.RULE_FIELD_COUNT, file=name, line=lines)


def test_extra_field_on_one_line(loaded):
    name = support.rewrite_file(loaded, RELOAD, "FF1_", support.edit_line(3, lambda line: line + b"\tEXTRA"))
    rejected(loaded, RELOAD, RawFileError, rawfile.RULE_FIELD_COUNT, file=name, line=3)


@pytest.mark.parametrize(
    "value", [b"20250230", b"20251301", b"2025041", b"2025-4-1", b"\x82\x51\x82\x4f\x82\x51\x82\x54"]
)
def test_invalid_date(loaded, value):
    # EF column 24 (実施年月日, index 23) on line 5; the last value is full-width digits ２０２５
    name = support.rewrite_file(loaded, RELOAD, "EFn_", edit_line_field(5, 23, value))
    err = rejected(loaded, RELOAD, RawFileError, rawfile.RULE_DATE, file=name, line=5)
    assert err.detail == "column performed_date"


def test_invalid_discharge_date_in_y1_payload(loaded):
    # y1 line 4 is the first case's A000030 row: payload_1 (index 8) is the discharge date
    assert b"A000030" in (support.month_dir(loaded, RELOAD) / Y1).read_bytes().split(b"\r\n")[3]
    name = support.rewrite_file(loaded, RELOAD, "FF1_", edit_line_field(4, 8, b"20250431"))
    rejected(loaded, RELOAD, RawFileError, rawfile.RULE_DATE, file=name, line=4)


def test_bytes_not_cp932(loaded):
    # 0x85 0x40 is not assigned in cp932; put it into EF 診療明細名称 on line 6
    name = support.rewrite_file(loaded, RELOAD, "EFn_", edit_line_field(6, 10, b"\x85\x40"))
    rejected(loaded, RELOAD, RawFileError, rawfile.RULE_NOT_CP932, file=name, line=6)


def test_utf8_text_instead_of_cp932(loaded):
    # The UTF-8 bytes of ガーゼ are also valid cp932: only the UTF-8 rule (a line whose non-ASCII bytes
    # all decode as UTF-8, with a multi-byte character) sees it, and names that line.
    name = support.rewrite_file(loaded, RELOAD, "EFn_", edit_line_field(7, 10, "ガーゼ".encode()))
    rejected(loaded, RELOAD, RawFileError, rawfile.RULE_UTF8, file=name, line=7)


def test_nul_byte(loaded):
    name = support.rewrite_file(loaded, RELOAD, "Dn_", edit_line_field(2, 9, b"abc\x00def"))
    rejected(loaded, RELOAD, RawFileError, rawfile.RULE_NUL, file=name, line=2)


def test_control_character(loaded):
    name = support.rewrite_file(loaded, RELOAD, "Dn_", edit_line_field(2, 9, b"abc\x1bdef"))
    rejected(loaded, RELOAD, RawFileError, rawfile.RULE_CONTROL, file=name, line=2)


def test_utf8_bom_in_data_file(loaded):
    name = support.rewrite_file(loaded, RELOAD, "FF1_", lambda data: b"\xef\xbb\xbf" + data)
    rejected(loaded, RELOAD, RawFileError, rawfile.RULE_BOM, file=name, line=1)


def test_empty_line_inside_a_file(loaded):
    name = support.rewrite_file(loaded, RELOAD, "EFn_", support.edit_line(3, lambda line: line + b"\r\n"))
    rejected(loaded, RELOAD, RawFileError, rawfile.RULE_EMPTY_LINE, file=name, line=4)


def test_duplicate_case_block_in_y1(loaded):
    """The same case's rows twice in one y1 file (a case key repeated): refused at the first repeat."""
    lines = (support.month_dir(loaded, RELOAD) / Y1).read_bytes().split(b"\r\n")
    key = lines[1].split(b"\t")[:4]
    block = [line for line in lines[1:] if line.split(b"\t")[:4] == key]
    assert lines[-1] == b"" and len(block) >= 5
    name = support.rewrite_file(loaded, RELOAD, "FF1_" + FAC_A, lambda _: b"\r\n".join([*lines[:-1], *block, b""]))
    first_repeat = len(lines)  # the appended block starts right after the original last line
    rule = "y1 item repeated for one case (duplicate case block)"
    rejected(loaded, RELOAD, RawFileError, rule, file=name, line=first_repeat)


def test_file_changed_after_validation(loaded):
    checked = manifest.validate_month(loaded.raw_root, RELOAD)
    path = support.month_dir(loaded, RELOAD) / D
    path.write_bytes(path.read_bytes().replace(b"1.4523", b"1.4524", 1))
    tables = support.fingerprint(loaded)
    with pytest.raises(RawFileError) as info:
        from dpc_elt.backends import embedded

        embedded.EmbeddedBackend(loaded).load_month(RELOAD, checked)
    assert info.value.rule == rawfile.RULE_SHA_CHANGED and info.value.file == D
    assert support.fingerprint(loaded) == tables


# --------------------------------------------------------------------------------- D: DPC code


@pytest.mark.parametrize(
    "code",
    [b"05013xx9900xx", b"050130xx9900xxx", b"O50130xx9900xx", b"0501-0xx9900xx", b"050130XX9900XX", b"050130xx 900xx"],
)
def test_d_file_with_malformed_dpc_code(loaded, code):
    # D line 2 is the first stay's bundled (93) row; 分類番号 is column 29 (index 28)
    assert (support.month_dir(loaded, RELOAD) / D).read_bytes().split(b"\r\n")[1].split(b"\t")[4] == b"93"
    name = support.rewrite_file(loaded, RELOAD, "Dn_", edit_line_field(2, 28, code))
    err = rejected(loaded, RELOAD, RawFileError, rawfile.RULE_DPC_CODE, file=name, line=2)
    assert err.detail == "column dpc_code"


def test_d_bundled_row_without_dpc_code(loaded):
    name = support.rewrite_file(loaded, RELOAD, "Dn_", edit_line_field(2, 28, b""))
    rejected(loaded, RELOAD, RawFileError, rawfile.RULE_DPC_CODE_MISSING, file=name, line=2)


def test_d_fee_for_service_row_without_dpc_code_is_fine(loaded):
    data = (support.month_dir(loaded, RELOAD) / D).read_bytes().split(b"\r\n")
    line = next(i for i, text in enumerate(data[1:], 2) if text and text.split(b"\t")[4] != b"93")
    support.rewrite_file(loaded, RELOAD, "Dn_", edit_line_field(line, 28, b""))
    accepted(loaded, RELOAD)


@pytest.mark.parametrize(
    ("category", "code", "rule"),
    [
        ("93", "050130xx9900xx", ""),
        ("93", "180010x0xxx0xx", ""),
        ("93", "01006000000000", ""),
        ("60", "", ""),
        (" 93", "", rawfile.RULE_DPC_CODE_MISSING),
        ("93", "", rawfile.RULE_DPC_CODE_MISSING),
        ("60", "05013", rawfile.RULE_DPC_CODE),
        ("93", "xx0130xx9900xx", rawfile.RULE_DPC_CODE),
        ("93", "０５０１３０xx9900xx", rawfile.RULE_DPC_CODE),
    ],
)
def test_dpc_code_rule(category, code, rule):
    assert rawfile.dpc_code_rule(category, code) == rule


# ------------------------------------------------------------------------------- accepted input


def test_truncated_last_line_without_line_ending_is_accepted(loaded):
    name = support.rewrite_file(loaded, RELOAD, "EFn_", lambda data: data.removesuffix(b"\r\n"))
    before = raw_rows(loaded, "ef_in", RELOAD)
    accepted(loaded, RELOAD)
    assert raw_rows(loaded, "ef_in", RELOAD) == before, name


def test_empty_file_listed_as_empty_is_accepted(loaded):
    """A 0-byte file with records 0 is a file type with no rows this month (the contract allows any
    subset): the month's rows of that file are gone after the load, other months untouched."""
    folder = support.month_dir(loaded, RELOAD)
    (folder / D).write_bytes(b"")
    support.rewrite_file(loaded, RELOAD, "Dn_" + FAC_A, lambda data: data)
    accepted(loaded, RELOAD)
    assert [r for r in raw_rows(loaded, "d", RELOAD) if r[0] == D] == []
    assert [r for r in raw_rows(loaded, "d", RELOAD) if r[0] != D], "the other facility's D file still loads"


def test_header_only_file_is_valid(loaded):
    support.rewrite_file(loaded, RELOAD, "Dn_" + FAC_A, lambda data: data.split(b"\r\n", 1)[0] + b"\r\n")
    assert next(f for f in support.read_manifest(loaded, RELOAD)["files"] if f["path"] == D)["records"] == 0
    accepted(loaded, RELOAD)
    assert [r for r in raw_rows(loaded, "d", RELOAD) if r[0] == D] == []


def test_ef_rows_of_an_unknown_case_are_kept(loaded, dbt):
    """EF/D rows whose case has no y1 row (still admitted, or discharged in a month not loaded) are
    normal: they are loaded and staged, and the month builds."""
    month = new_month(loaded)
    ef_lines = {}
    with support.connect(loaded) as con:
        before = con.execute("select coalesce(sum(n_ef_rows), 0) from stage.stg_dpc__ef_in_stays").fetchone()[0]
    support.pipeline_month(loaded, dbt, month)
    with support.connect(loaded) as con:
        ef_lines = dict(
            con.execute(
                "select yyyymm, sum(n_ef_rows) from stage.stg_dpc__ef_in_stays group by yyyymm order by yyyymm"
            ).fetchall()
        )
        orphans = con.execute(
            """
            select count(*) from stage.stg_dpc__ef_in_stays as ef
            where ef.yyyymm = ? and not exists (
                select 1 from stage.stg_dpc__y1_cases as c
                where c.facility_cd = ef.facility_cd and c.patient_id = ef.patient_id
                    and c.admission_date = ef.admission_date)
            """,
            [month],
        ).fetchone()[0]
    assert orphans > 0, "the scenario has stays still open in 202505"
    assert ef_lines[month] == sum(
        f["records"] for f in support.read_manifest(loaded, month)["files"] if f["file_type"] == "ef_in"
    )
    assert sum(ef_lines.values()) == before + ef_lines[month]


def test_every_rule_text_is_value_free():
    """Rule texts are constants: no format placeholder that could carry a value."""
    rules = [v for k, v in vars(rawfile).items() if k.startswith("RULE_")]
    rules += [v for k, v in vars(manifest).items() if k.startswith("RULE_")]
    assert len(rules) > 20
    assert not [r for r in rules if "{" in r or "%" in r]
