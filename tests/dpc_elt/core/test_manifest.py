"""Manifest validation (contract §2): one month folder, all or nothing."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from dpc_elt.core import manifest as m
from dpc_elt.core.errors import ManifestError, ParameterError
from dpc_elt.core.settings import MANIFEST_SCHEMA_PATH

SECRET = "山田太郎ﾔﾏﾀﾞ"  # a distinctive value that must never reach an error message


def _parse(doc: object, yyyymm: str = "202504") -> m.ParsedManifest:
    text = doc if isinstance(doc, str | bytes) else json.dumps(doc, ensure_ascii=False)
    return m.parse_manifest(text, source="x/_manifest.json", yyyymm=yyyymm)


def _rule(exc: pytest.ExceptionInfo[ManifestError]) -> str:
    return exc.value.rule


# ------------------------------------------------------------------------------------- happy path


def test_valid_month_local(tmp_path, dpc):
    month = dpc.month(str(tmp_path / "raw"))
    result = m.validate_month(str(tmp_path / "raw"), "202504")

    assert result.yyyymm == "202504"
    assert result.created_at == "2025-05-08T09:00:00+09:00"
    assert result.unlisted == ()
    assert [(f.file_type, f.path, f.records) for f in result.files] == [
        ("y1", "FF1_131000123_2504.txt", 3),
        ("ef_in", "EFn_131000123_2504.txt", 2),
        ("d", "Dn_131000123_2504.txt", 1),
    ]
    for got, fixture in zip(result.files, month.files, strict=True):
        assert got.sha256 == hashlib.sha256(fixture.content).hexdigest()
        assert got.bytes == len(fixture.content)
        assert got.facility_cd == "131000123"
    assert result.total_records == 6


def test_valid_month_memory_fs(memory_root, dpc):
    dpc.month(memory_root)
    result = m.validate_month(memory_root, "202504")
    assert [f.records for f in result.files] == [3, 2, 1]
    assert result.unlisted == ()


def test_valid_month_with_explicit_fs(memory_root, dpc):
    import fsspec

    dpc.month(memory_root)
    result = m.validate_month(memory_root, "202504", fs=fsspec.filesystem("memory"))
    assert len(result.files) == 3


def test_xcom_round_trip(tmp_path, dpc):
    dpc.month(str(tmp_path))
    (tmp_path / "yyyymm=202504" / "readme.txt").write_text("x")
    result = m.validate_month(str(tmp_path), "202504")
    wire = json.loads(json.dumps(result.to_dict()))
    assert m.ValidatedManifest.from_dict(wire) == result
    assert set(wire) == {"yyyymm", "created_at", "files", "unlisted", "manifest_sha256", "facility_cd"}
    assert wire["unlisted"] == ["readme.txt"]


def test_the_validated_manifest_carries_the_sha256_of_the_manifest_bytes(tmp_path, dpc):
    """What a run records as loaded, and what a manifest event is compared with: the same bytes."""
    import fsspec

    dpc.month(str(tmp_path))
    manifest_bytes = (tmp_path / "yyyymm=202504" / "_manifest.json").read_bytes()
    expected = hashlib.sha256(manifest_bytes).hexdigest()
    assert m.validate_month(str(tmp_path), "202504").manifest_sha256 == expected
    assert m.manifest_sha256(fsspec.filesystem("file"), str(tmp_path), "202504") == expected
    (tmp_path / "yyyymm=202504" / "_manifest.json").write_bytes(manifest_bytes.replace(b"2025-05-08", b"2025-05-09"))
    assert m.manifest_sha256(fsspec.filesystem("file"), str(tmp_path), "202504") not in (expected, None)
    assert m.manifest_sha256(fsspec.filesystem("file"), str(tmp_path), "202503") is None  # none delivered
    assert m.ValidatedManifest.from_dict({"yyyymm": "202504", "created_at": "x", "files": []}).manifest_sha256 == ""


def test_header_only_and_empty_files_have_zero_records(tmp_path, dpc):
    files = [
        dpc.file("y1", []),  # header line only, with CRLF
        dpc.file("ef_in", [], final_newline=False),  # header line only, no line ending
        dpc.file("d", [], header=False),  # zero bytes
    ]
    assert files[2].content == b""
    dpc.month(str(tmp_path), files=files)
    result = m.validate_month(str(tmp_path), "202504")
    assert [f.records for f in result.files] == [0, 0, 0]


@pytest.mark.parametrize(
    ("kw", "records"),
    [
        ({"header": True}, 2),
        ({"header": False}, 2),
        ({"final_newline": False}, 2),  # a last line without line ending counts
        ({"newline": "\n"}, 2),  # LF only
        ({"newline": "\n", "final_newline": False, "header": False}, 2),
    ],
)
def test_record_count_rules(tmp_path, dpc, kw, records):
    f = dpc.file("ef_in", [dpc.row("ef_in"), dpc.row("ef_in", order_no="2")], **kw)
    assert f.records == records
    dpc.month(str(tmp_path), files=[f])
    assert m.validate_month(str(tmp_path), "202504").files[0].records == records


def test_header_with_half_width_name_is_recognised(tmp_path, dpc):
    rows = [dpc.header("y1", second="ﾃﾞｰﾀ識別番号"), dpc.row("y1")]
    f = dpc.file("y1", rows, header=False)
    f.records = 1
    dpc.month(str(tmp_path), files=[f])
    assert m.validate_month(str(tmp_path), "202504").files[0].records == 1


def test_scan_file_counts_across_small_chunks():
    data = "a\tデータ識別番号\r\nx\r\ny\r\nz".encode("cp932")
    assert m.scan_file(io.BytesIO(data), chunk_bytes=3) == (hashlib.sha256(data).hexdigest(), len(data), 3)
    assert m.scan_file(io.BytesIO(b"x\r\n\r\n"), chunk_bytes=2)[2] == 2  # empty line counts, trailing does not
    assert m.scan_file(io.BytesIO(b""))[1:] == (0, 0)


def test_unlisted_files_are_reported_not_rejected(tmp_path, dpc):
    dpc.month(str(tmp_path))
    folder = tmp_path / "yyyymm=202504"
    (folder / "EFn_131000999_2504.txt").write_bytes(b"junk")
    (folder / "old").mkdir()
    result = m.validate_month(str(tmp_path), "202504")
    assert result.unlisted == ("EFn_131000999_2504.txt", "old")
    assert len(result.files) == 3


# ------------------------------------------------------------------------------------ month_uri


@pytest.mark.parametrize(
    ("root", "uri"),
    [
        ("/data/raw", "/data/raw/yyyymm=202504"),
        ("/data/raw/", "/data/raw/yyyymm=202504"),
        ("s3://bucket/raw", "s3://bucket/raw/yyyymm=202504"),
        ("memory://raw", "memory://raw/yyyymm=202504"),
        ("memory://", "memory://yyyymm=202504"),
    ],
)
def test_month_uri(root, uri):
    assert m.month_uri(root, "202504") == uri


@pytest.mark.parametrize(
    "bad", ["202513", "202500", "189912", "210001", "20254", "2025-04", "２０２５０４", "202504\n"]
)
def test_month_uri_rejects_bad_month(bad):
    with pytest.raises(ParameterError):
        m.month_uri("/raw", bad)
    with pytest.raises(ParameterError):
        m.validate_month("/raw", bad)


# ------------------------------------------------------------------------------ missing / JSON


def test_missing_manifest(tmp_path, dpc):
    dpc.month(str(tmp_path), manifest=False)
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path), "202504")
    assert _rule(exc) == m.RULE_MANIFEST_MISSING
    assert exc.value.file.endswith("yyyymm=202504/_manifest.json")


def test_missing_month_folder(tmp_path, memory_root):
    for root in (str(tmp_path), memory_root):
        with pytest.raises(ManifestError) as exc:
            m.validate_month(root, "202504")
        assert _rule(exc) == m.RULE_MANIFEST_MISSING


def test_manifest_that_is_a_directory(tmp_path, dpc):
    dpc.month(str(tmp_path), manifest=False)
    (tmp_path / "yyyymm=202504" / "_manifest.json").mkdir()
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path), "202504")
    assert _rule(exc) == m.RULE_MANIFEST_NOT_FILE


def test_invalid_json_names_line_and_column(tmp_path, dpc):
    month = dpc.month(str(tmp_path))
    dpc.write_manifest(month, '{\n  "manifest_version": 1,\n  "yyyymm": ,\n  "files": []\n}\n')
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path), "202504")
    assert _rule(exc) == m.RULE_INVALID_JSON
    assert exc.value.line == 3
    assert "column 13" in str(exc.value)
    assert ":3: invalid JSON" in str(exc.value)


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"\xff\xfe{}",
        b'{"a": NaN}',
        b'{"manifest_version": 1, "manifest_version": 1}',
        b"[" * 100_000,
        b'{"x": 1' + b"0" * 5000 + b"}",
        f'{{"yyyymm": "{SECRET}\\x"}}'.encode(),
    ],
)
def test_invalid_json_variants(text):
    with pytest.raises(ManifestError) as exc:
        _parse(text)
    assert _rule(exc) == m.RULE_INVALID_JSON
    assert SECRET not in str(exc.value)


def test_utf8_bom_manifest_is_accepted(dpc):
    doc = dpc.manifest("202504", dpc.default_files())
    files, created_at = _parse(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    assert len(files) == 3
    assert created_at == doc["created_at"]


def test_manifest_size_cap(tmp_path, dpc):
    doc = dpc.manifest("202504", dpc.default_files())
    big = json.dumps(doc) + " " * m.MAX_MANIFEST_BYTES
    with pytest.raises(ManifestError) as exc:
        _parse(big)
    assert _rule(exc) == m.RULE_MANIFEST_TOO_LARGE
    month = dpc.month(str(tmp_path))
    dpc.write_manifest(month, big)
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path), "202504")
    assert _rule(exc) == m.RULE_MANIFEST_TOO_LARGE


# ---------------------------------------------------------------------------------- JSON Schema


def test_schema_file_is_valid_2020_12_and_documented():
    from jsonschema import Draft202012Validator

    schema = json.loads(MANIFEST_SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["description"]
    item = schema["properties"]["files"]["items"]
    assert schema["additionalProperties"] is False and item["additionalProperties"] is False
    assert item["properties"]["file_type"]["enum"] == ["y1", "ef_in", "d"]


def _set(path: str, value: object):
    def mutate(doc: dict) -> None:
        *parents, last = path.split(".")
        target = doc
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return mutate


_DELETE = object()

SCHEMA_CASES = [
    ("manifest_version", 2, "manifest_version: must be 1"),
    ("manifest_version", "1", "manifest_version: must be 1"),
    ("manifest_version", _DELETE, "$: missing required property manifest_version"),
    ("yyyymm", "202513", "yyyymm: does not match pattern"),
    ("yyyymm", "189912", "yyyymm: does not match pattern"),
    ("yyyymm", 202504, "yyyymm: must be of type string"),
    ("yyyymm", "202504\n", "yyyymm: longer than 6 characters"),
    ("created_at", "2025-05-08", "created_at: "),
    ("created_at", "2025-02-30T09:00:00+09:00", "created_at: is not a valid date-time"),
    ("created_at", _DELETE, "$: missing required property created_at"),
    ("files", [], "files: fewer than 1 items"),
    ("files", {}, "files: must be of type array"),
    ("files.0.file_type", "ef", "files[0].file_type: must be one of y1, ef_in, d"),
    ("files.0.facility_cd", "13100012X", "files[0].facility_cd: does not match pattern"),
    ("files.0.facility_cd", "13100012", "files[0].facility_cd: shorter than 9 characters"),
    ("files.0.sha256", "A" * 64, "files[0].sha256: does not match pattern"),
    ("files.0.sha256", "a" * 63, "files[0].sha256: "),
    ("files.0.sha256", _DELETE, "files[0]: missing required property sha256"),
    ("files.0.bytes", -1, "files[0].bytes: less than minimum 0"),
    ("files.0.bytes", 1.5, "files[0].bytes: must be of type integer"),
    ("files.0.bytes", True, "files[0].bytes: must be of type integer"),
    ("files.0.bytes", 2**41, "files[0].bytes: greater than maximum 1099511627776"),
    ("files.0.records", -5, "files[0].records: less than minimum 0"),
    ("files.0.records", "10", "files[0].records: must be of type integer"),
    ("files.0.path", "sub/FF1_131000123_2504.txt", "files[0].path: does not match pattern"),
    ("files.0.path", "..", "files[0].path: must not match"),
    ("files.0.path", "FF1_131000123_2504..txt", "files[0].path: must not match"),
    ("files.0.path", "x" * 129, "files[0].path: longer than 128 characters"),
    ("files.0.path", "", "files[0].path: shorter than 1 characters"),
    ("extra", "1", "$: additional property not allowed"),
    ("files.0.extra", "1", "files[0]: additional property not allowed"),
]


@pytest.mark.parametrize(("path", "value", "expected"), SCHEMA_CASES, ids=[c[2] for c in SCHEMA_CASES])
def test_schema_rules(dpc, path, value, expected):
    doc = dpc.manifest("202504", dpc.default_files())
    _parse(copy.deepcopy(doc))  # the unmodified document passes
    _set(path, value)(doc)
    with pytest.raises(ManifestError) as exc:
        _parse(doc)
    assert _rule(exc).startswith(expected)
    assert exc.value.file == "x/_manifest.json"


@pytest.mark.parametrize("where", ["files.0.sha256", "files.0.path", "yyyymm", "created_at", "files.0.facility_cd"])
def test_schema_errors_never_echo_the_value(dpc, where):
    doc = dpc.manifest("202504", dpc.default_files())
    _set(where, SECRET)(doc)
    doc[SECRET] = SECRET  # an extra property whose name is a value too
    with pytest.raises(ManifestError) as exc:
        _parse(doc)
    assert SECRET not in str(exc.value)
    assert SECRET not in repr(exc.value.args)


def test_schema_error_via_validate_month(tmp_path, dpc):
    month = dpc.month(str(tmp_path))
    month.manifest["files"][1]["sha256"] = "Z" * 64
    dpc.write_manifest(month, month.manifest)
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path), "202504")
    assert _rule(exc) == "files[1].sha256: does not match pattern"
    assert "Z" * 64 not in str(exc.value)


# ---------------------------------------------------------------------------- cross-field rules


def test_yyyymm_must_equal_run_month(tmp_path, dpc):
    files = dpc.default_files("202503")
    month = dpc.month(str(tmp_path), "202504", files=files)
    month.manifest["yyyymm"] = "202503"
    dpc.write_manifest(month, month.manifest)
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path), "202504")
    assert _rule(exc) == m.RULE_MONTH_MISMATCH


def test_duplicate_path(dpc):
    doc = dpc.manifest("202504", dpc.default_files())
    doc["files"].append(dict(doc["files"][0]))
    with pytest.raises(ManifestError) as exc:
        _parse(doc)
    assert _rule(exc) == f"files[3].path: {m.RULE_DUPLICATE_PATH}"


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("file_type", "ef_in", m.RULE_NAME_FILE_TYPE),  # FF1_… listed as ef_in
        ("path", "FF1_131000123_2504.csv", m.RULE_NAME_FILE_TYPE),
        ("path", "ff1_131000123_2504.txt", m.RULE_NAME_FILE_TYPE),
        ("path", "FF1_13100012_2504.txt", m.RULE_NAME_FILE_TYPE),
        ("facility_cd", "131000999", m.RULE_NAME_FACILITY),
        ("path", "FF1_131000123_2503.txt", m.RULE_NAME_MONTH),
        ("path", "FF1_131000123_2404.txt", m.RULE_NAME_MONTH),
    ],
)
def test_file_name_must_match_type_facility_and_month(dpc, field, value, rule):
    doc = dpc.manifest("202504", dpc.default_files())
    doc["files"][0][field] = value
    with pytest.raises(ManifestError) as exc:
        _parse(doc)
    assert _rule(exc) == f"files[0].path: {rule}"


def test_missing_listed_file(tmp_path, dpc):
    dpc.month(str(tmp_path))
    os.remove(tmp_path / "yyyymm=202504" / "EFn_131000123_2504.txt")
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path), "202504")
    assert _rule(exc) == m.RULE_FILE_MISSING
    assert exc.value.file.endswith("yyyymm=202504/EFn_131000123_2504.txt")


def test_listed_directory_is_not_a_regular_file(tmp_path, dpc):
    dpc.month(str(tmp_path))
    folder = tmp_path / "yyyymm=202504"
    os.remove(folder / "Dn_131000123_2504.txt")
    (folder / "Dn_131000123_2504.txt").mkdir()
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path), "202504")
    assert _rule(exc) == m.RULE_NOT_REGULAR_FILE


def test_listed_symlink_is_rejected(tmp_path, dpc):
    month = dpc.month(str(tmp_path / "raw"))
    folder = tmp_path / "raw" / "yyyymm=202504"
    outside = tmp_path / "outside.txt"
    target = folder / "Dn_131000123_2504.txt"
    outside.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside)
    assert month.files[2].path == target.name
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path / "raw"), "202504")
    assert _rule(exc) == m.RULE_NOT_REGULAR_FILE


def test_wrong_size(tmp_path, dpc):
    month = dpc.month(str(tmp_path))
    month.manifest["files"][1]["bytes"] += 1
    dpc.write_manifest(month, month.manifest)
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path), "202504")
    assert _rule(exc) == m.RULE_SIZE
    assert exc.value.file.endswith("EFn_131000123_2504.txt")


def test_wrong_sha256_same_size(memory_root, dpc):
    month = dpc.month(memory_root)
    ef = month.files[1]
    changed = ef.content.replace(b"20250410", b"20250411", 1)
    assert len(changed) == len(ef.content) and changed != ef.content
    dpc.put(f"{month.folder}/{ef.path}", changed)
    with pytest.raises(ManifestError) as exc:
        m.validate_month(memory_root, "202504")
    assert _rule(exc) == m.RULE_SHA256
    assert exc.value.file.endswith("EFn_131000123_2504.txt")


@pytest.mark.parametrize("delta", [1, -1])
def test_wrong_record_count(tmp_path, dpc, delta):
    month = dpc.month(str(tmp_path))
    month.manifest["files"][0]["records"] += delta
    dpc.write_manifest(month, month.manifest)
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path), "202504")
    assert _rule(exc) == m.RULE_RECORDS
    assert exc.value.file.endswith("FF1_131000123_2504.txt")
    assert "manifest " in str(exc.value) and "found 3" in str(exc.value)


@pytest.mark.parametrize("breakage", ["missing", "size"])
def test_cheap_checks_run_before_hashing(tmp_path, dpc, monkeypatch, breakage):
    """A missing or resized last file fails the month without hashing the others."""
    dpc.month(str(tmp_path))
    last = tmp_path / "yyyymm=202504" / "Dn_131000123_2504.txt"
    if breakage == "missing":
        os.remove(last)
    else:
        last.write_bytes(last.read_bytes() + b"x")
    calls = []
    monkeypatch.setattr(m, "scan_file", lambda *a, **k: calls.append(a) or ("", 0, 0))
    with pytest.raises(ManifestError) as exc:
        m.validate_month(str(tmp_path), "202504")
    assert _rule(exc) == (m.RULE_FILE_MISSING if breakage == "missing" else m.RULE_SIZE)
    assert calls == []


def test_entry_flagged_as_link_is_rejected(memory_root, dpc):
    """Object stores that report links (``islink``) are treated like local symlinks."""
    from fsspec.implementations.memory import MemoryFileSystem

    class LinkingFS(MemoryFileSystem):
        def ls(self, path, detail=True, **kwargs):
            entries = super().ls(path, detail=detail, **kwargs)
            return [{**e, "islink": e["name"].endswith("Dn_131000123_2504.txt")} for e in entries]

    dpc.month(memory_root)
    with pytest.raises(ManifestError) as exc:
        m.validate_month(memory_root, "202504", fs=LinkingFS())
    assert _rule(exc) == m.RULE_NOT_REGULAR_FILE
    assert exc.value.file.endswith("Dn_131000123_2504.txt")


# --- a one-facility reload (issue 16 §1) ----------------------------------------------------------------

OTHER = "131000124"


def two_facilities(dpc, root: str, *, other_files: bool = True):
    """The default facility's three files and, listed in the same manifest, another facility's two."""
    files = dpc.default_files()
    others = [
        dpc.file("y1", [dpc.row("y1", facility_cd=OTHER)], facility_cd=OTHER),
        dpc.file("d", [dpc.row("d", facility_cd=OTHER)], facility_cd=OTHER, header=False),
    ]
    month = dpc.month(root, files=files + others)
    if not other_files:  # the manifest still lists them: a resubmission need not bring them again
        for f in others:
            (Path(month.folder) / f.path).unlink()
    return month


def test_a_facility_reload_validates_and_returns_only_that_facilitys_files(tmp_path, dpc):
    two_facilities(dpc, str(tmp_path), other_files=False)
    result = m.validate_month(str(tmp_path), "202504", facility_cd=dpc.facility)
    assert {f.facility_cd for f in result.files} == {dpc.facility} and len(result.files) == 3
    assert result.facility_cd == dpc.facility
    assert result.unlisted == ()  # the other facility's listed files are not "unlisted"
    assert m.ValidatedManifest.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    with pytest.raises(ManifestError, match=m.RULE_FILE_MISSING):  # the whole month needs them
        m.validate_month(str(tmp_path), "202504")


def test_a_facility_without_files_in_the_manifest_is_refused(tmp_path, dpc):
    two_facilities(dpc, str(tmp_path))
    with pytest.raises(ManifestError, match=m.RULE_FACILITY_NOT_LISTED) as error:
        m.validate_month(str(tmp_path), "202504", facility_cd="999999999")
    assert error.value.file.endswith("_manifest.json")


def test_a_facility_code_is_checked_before_anything_is_read(tmp_path, dpc):
    two_facilities(dpc, str(tmp_path))
    with pytest.raises(ParameterError, match="nine digits"):
        m.validate_month(str(tmp_path), "202504", facility_cd="13100012'")


@pytest.mark.parametrize("position", [1, 2, 3], ids=["first", "middle", "last-without-newline"])
def test_a_line_of_another_facility_in_the_facilitys_file_is_refused_with_its_line(tmp_path, dpc, position):
    rows = [dpc.row("ef_in", order_no=str(n)) for n in range(1, 4)]
    rows[position - 1] = dpc.row("ef_in", order_no=str(position), facility_cd=OTHER)
    ef = dpc.file("ef_in", rows, final_newline=position != 3)  # line 1 is the header
    files = [f if f.file_type != "ef_in" else ef for f in dpc.default_files()]
    dpc.month(str(tmp_path), files=files)
    with pytest.raises(ManifestError, match=m.RULE_LINE_OTHER_FACILITY) as error:
        m.validate_month(str(tmp_path), "202504", facility_cd=dpc.facility)
    assert error.value.file.endswith(ef.path) and error.value.line == position + 1
    assert m.validate_month(str(tmp_path), "202504").files  # a whole-month load has no such rule


def test_the_other_facility_rule_finds_lines_across_chunk_boundaries(dpc):
    rows = [dpc.row("d", order_no=str(n)) for n in range(1, 200)]
    rows[150] = dpc.row("d", order_no="151", facility_cd=OTHER)
    data = dpc.encode(rows)
    for chunk_bytes in (1, 7, 64, 1000, len(data)):
        with pytest.raises(m._LineOfOtherFacility) as found:
            m.scan_file(io.BytesIO(data), chunk_bytes=chunk_bytes, facility_cd=dpc.facility)
        assert found.value.line == 151, chunk_bytes
        assert m.scan_file(io.BytesIO(data), chunk_bytes=chunk_bytes)[2] == 199
