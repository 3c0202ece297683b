"""Tests of the synthetic DPC data generator against the data contract (§1 file formats, §2 manifest)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from dpc_elt.core import formats
from dpc_elt.dev import synthetic
from dpc_elt.dev.synthetic import Stay, generate_stays, main, month_range, write_months

REPO = Path(__file__).resolve().parents[3]
MONTHS = month_range("202503", "202505")
HALF_WIDTH_KATAKANA = re.compile(r"[\uff66-\uff9f]")
KANJI = re.compile(r"[\u4e00-\u9fff]")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MANIFEST_KEYS = {"manifest_version", "yyyymm", "created_at", "files"}
FILE_KEYS = {"file_type", "facility_cd", "path", "sha256", "bytes", "records"}

F1 = "131000123"
F2 = "271000456"


# --------------------------------------------------------------------------------------------
# Helpers: an independent reading of the contract


def read_lines(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header fields, data rows) of a raw file, checking encoding, line endings and NUL bytes."""
    data = path.read_bytes()
    assert b"\x00" not in data, path.name
    assert data.endswith(b"\r\n"), f"{path.name}: last line lacks CRLF"
    # cp932 trail bytes are never CR or LF, so counting on the bytes is exact
    assert data.count(b"\r\n") == data.count(b"\n") == data.count(b"\r"), f"{path.name}: bare CR or LF"
    assert formats.is_header(data[: data.index(b"\r\n") + 2]), f"{path.name}: first line is not a header"
    text = data.decode(formats.ENCODING)  # strict cp932
    rows = [line.split("\t") for line in text.split("\r\n")[:-1]]
    return rows[0], rows[1:]


@functools.cache
def is_date_or_sentinel(value: str) -> bool:
    if value in formats.DATE_SENTINELS:
        return True
    if not re.fullmatch(r"[0-9]{8}", value):
        return False
    try:
        datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return False
    return True


def d(text: str) -> date:
    return datetime.strptime(text, "%Y%m%d").date()


def check_month_folder(month_dir: Path, yyyymm: str) -> dict[str, dict]:
    """Check one month folder against the contract; return {file name: manifest entry + "rows"}."""
    manifest = json.loads((month_dir / synthetic.MANIFEST_NAME).read_text(encoding="utf-8"))
    assert set(manifest) == MANIFEST_KEYS
    assert manifest["manifest_version"] == 1
    assert manifest["yyyymm"] == yyyymm
    created = datetime.fromisoformat(manifest["created_at"])
    assert created.utcoffset() == timedelta(hours=9)
    entries = {}
    for entry in manifest["files"]:
        assert set(entry) == FILE_KEYS
        assert entry["path"] not in entries, "file listed twice"
        assert "/" not in entry["path"] and "\\" not in entry["path"]
        entries[entry["path"]] = entry
    on_disk = {p.name for p in month_dir.iterdir() if p.name != synthetic.MANIFEST_NAME}
    assert on_disk == set(entries)
    for name, entry in entries.items():
        path = month_dir / name
        layout = formats.LAYOUTS[entry["file_type"]]
        match = layout.name_pattern.match(name)
        assert match, name
        assert formats.layout_for_name(name) is layout
        assert match["facility_cd"] == entry["facility_cd"]
        assert match["yymm"] == yyyymm[2:]
        assert name == layout.file_name(entry["facility_cd"], yyyymm)
        data = path.read_bytes()
        assert SHA256_HEX.match(entry["sha256"])
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), f"{name}: sha256"
        assert entry["bytes"] == len(data), f"{name}: bytes"
        header, rows = read_lines(path)
        assert entry["records"] == len(rows), f"{name}: records"
        assert len(header) == layout.column_count
        dates = layout.date_column_indexes()
        is_y1 = layout is formats.Y1
        item_code = layout.columns.index("item_code") if is_y1 else None
        payload_at = {
            code: [formats.Y1.columns.index(c) for c in columns] for code, columns in formats.Y1_DATE_PAYLOADS.items()
        }
        performed_at = None if is_y1 else layout.columns.index("performed_date")
        for n, row in enumerate(rows, 2):
            assert len(row) == layout.column_count, f"{name}:{n}"
            assert row[0] == entry["facility_cd"], f"{name}:{n}"
            assert len(row[1]) == 10, f"{name}:{n}"
            for index, column, required in dates:
                value = row[index]
                if value or required:
                    assert is_date_or_sentinel(value), f"{name}:{n}: {column}"
            if item_code is not None:
                for index in payload_at.get(row[item_code], ()):
                    assert is_date_or_sentinel(row[index]), f"{name}:{n}: payload {index}"
            elif row[performed_at]:
                assert row[performed_at][:6] == yyyymm, f"{name}:{n}: day outside the month"
        entry["rows"] = rows
    return entries


def load(out: Path, months: list[str]) -> dict[tuple[str, str, str], list[list[str]]]:
    """{(yyyymm, file_type, facility_cd): data rows} of a whole output tree, checked by the contract."""
    result = {}
    for yyyymm in months:
        for entry in check_month_folder(out / f"yyyymm={yyyymm}", yyyymm).values():
            result[(yyyymm, entry["file_type"], entry["facility_cd"])] = entry["rows"]
    return result


def y1_cases(data) -> dict[tuple[str, str, str, int], dict[str, str]]:
    col = formats.Y1.columns.index
    cases: dict[tuple[str, str, str, int], dict[str, str]] = defaultdict(dict)
    for (yyyymm, file_type, _fac), rows in data.items():
        if file_type != "y1":
            continue
        for row in rows:
            if row[col("summary_no")] != formats.Y1_WHOLE_STAY_SUMMARY_NO:
                continue
            key = (row[0], row[1], row[2], int(row[3]))
            case = cases[key]
            case["yyyymm"] = yyyymm
            code = row[col("item_code")]
            if code == "A000020":
                case["admission_date"] = row[col("payload_1")]
                case["admission_type"] = row[col("payload_5")]
            elif code == "A000030":
                case["discharge_date"] = row[col("payload_1")]
                case["outcome"] = row[col("payload_3")]
    return dict(cases)


def tree_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------------------------
# The default small run: 3 facilities, 3 months, default size


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> Path:
    # The CLI's defaults except a smaller size, to keep the suite fast; the scenarios do not
    # depend on the size (generate_stays plants them in every facility).
    out = tmp_path_factory.mktemp("synthetic") / "raw"
    manifests = write_months(generate_stays(3, MONTHS, 1, discharges_per_month=150), MONTHS, out)
    assert [p.parent.name for p in manifests] == [f"yyyymm={m}" for m in MONTHS]
    return out


@pytest.fixture(scope="module")
def default_data(default_run):
    """The rows of the default run, every file checked against the contract on the way."""
    return load(default_run, MONTHS)


def test_round_trip_matches_contract(default_run, default_data):
    assert len(default_data) == 3 * 9  # every month, facility and type
    assert all(rows for rows in default_data.values())
    facilities = {fac for (_m, _t, fac) in default_data}
    assert len(facilities) == 3
    assert all(re.fullmatch(r"[0-9]{9}", f) for f in facilities)
    for yyyymm in MONTHS:
        created = json.loads((default_run / f"yyyymm={yyyymm}" / "_manifest.json").read_text())["created_at"]
        assert created == synthetic.default_created_at(yyyymm)


def test_contract_checks_catch_broken_files(tmp_path):
    """The checks above can fail: the manifest catches changed bytes, and with a manifest that
    matches the broken file, the content checks catch bad line endings, dates, counts and fields."""
    stays = [Stay(F1, "P000000001", date(2025, 3, 2), discharge_date=date(2025, 3, 4))]
    cases = iter(range(100))

    def broken(edit, fix_manifest: bool) -> Path:
        out = tmp_path / f"case{next(cases)}"
        (manifest_path,) = write_months(stays, ["202503"], out)
        path = manifest_path.parent / formats.EF_IN.file_name(F1, "202503")
        data = edit(path.read_bytes())
        path.write_bytes(data)
        if fix_manifest:
            manifest = json.loads(manifest_path.read_text())
            for entry in manifest["files"]:
                if entry["path"] == path.name:
                    entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
            manifest_path.write_text(json.dumps(manifest))
        return manifest_path.parent

    check_month_folder(broken(lambda b: b, fix_manifest=True), "202503")
    with pytest.raises(AssertionError, match="sha256"):
        check_month_folder(broken(lambda b: b.replace(b"H60001", b"H60002", 1), fix_manifest=False), "202503")
    for edit, error, message in (
        (lambda b: b.replace(b"20250303", b"20250230", 1), AssertionError, "performed_date"),  # no such day
        (lambda b: b[:-2] + b"\n", AssertionError, "CRLF"),
        (lambda b: b.replace(b"\r\n", b"\n", 2), AssertionError, "bare CR or LF"),
        (lambda b: b + b"\t" * 30 + b"\r\n", AssertionError, "records"),  # one line more than counted
        (lambda b: b.replace(b"\t1688\t", b"\t1688 ", 1), AssertionError, ":2"),  # a field short
        (lambda b: b.replace("急性期".encode("cp932"), b"\x81\x20\x81", 1), UnicodeDecodeError, "cp932"),
    ):
        with pytest.raises(error, match=message):
            check_month_folder(broken(edit, fix_manifest=True), "202503")


def test_manifests_validate_against_the_repository_schema(default_run):
    import jsonschema

    schema = json.loads((REPO / "include" / "schemas" / "manifest.schema.json").read_text(encoding="utf-8"))
    for yyyymm in MONTHS:
        manifest = json.loads((default_run / f"yyyymm={yyyymm}" / "_manifest.json").read_text(encoding="utf-8"))
        jsonschema.validate(manifest, schema)


def test_header_uses_japanese_survey_names(default_run):
    for path in (default_run / "yyyymm=202503").glob("*.txt"):
        with path.open("rb") as fh:
            header = fh.readline().rstrip(b"\r\n").decode(formats.ENCODING).split("\t")
        assert header[:2] == ["施設コード", "データ識別番号"]


def test_scenarios_are_covered(default_data):
    cases = y1_cases(default_data)
    by_patient: dict[tuple[str, str], list[tuple[str, int, dict]]] = defaultdict(list)
    for (fac, pid, adm, seq), case in cases.items():
        assert case["admission_date"] == adm
        by_patient[(fac, pid)].append((adm, seq, case))
    gaps = []
    same_day_pairs = 0
    for stays in by_patient.values():
        stays.sort(key=lambda s: (s[0], s[1]))
        for (adm0, seq0, prev), (adm1, seq1, _cur) in itertools.pairwise(stays):
            gaps.append((d(adm1) - d(prev["discharge_date"])).days)
            if adm0 == adm1:
                assert (seq0, seq1) == (1, 2)
                assert prev["discharge_date"] == adm0  # the first one was a same-day discharge
                same_day_pairs += 1
    assert any(0 <= g <= 7 for g in gaps)
    assert any(8 <= g <= 30 for g in gaps)
    assert any(g > 30 for g in gaps)
    assert all(g >= 0 for g in gaps), "stays of one patient overlap"
    assert same_day_pairs >= 1

    # deaths, and nothing for that patient afterwards (neither y1 nor EF)
    ef_col = formats.EF_IN.columns.index
    ef_admissions: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (_m, file_type, _fac), rows in default_data.items():
        if file_type == "ef_in":
            for row in rows:
                ef_admissions[(row[0], row[1])].add(row[ef_col("admission_date")])
    deaths = [(k, c) for k, c in cases.items() if c["outcome"] in ("6", "7")]
    assert deaths
    for (fac, pid, _adm, _seq), case in deaths:
        later = [a for a, _s, _c in by_patient[(fac, pid)] if a > case["discharge_date"]]
        assert not later
        assert all(a <= case["discharge_date"] for a in ef_admissions[(fac, pid)])

    # emergency, unplanned and planned admissions
    types = {c["admission_type"] for c in cases.values()}
    assert types & {"100", "101"} and "200" in types and any(t.startswith("3") for t in types)

    # ward segments
    y1_rows = [row for (_m, t, _f), rows in default_data.items() if t == "y1" for row in rows]
    assert any(row[4] != "0" for row in y1_rows)

    # exactly one patient id at two facilities
    facilities_of: dict[str, set[str]] = defaultdict(set)
    for (_m, _t, fac), rows in default_data.items():
        for row in rows:
            facilities_of[row[1]].add(fac)
    assert sum(len(f) > 1 for f in facilities_of.values()) == 1

    # a stay with EF rows in two months' files, 退院年月日 00000000 in the earlier one
    ef_by_month: dict[str, dict[tuple[str, str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
    for (yyyymm, file_type, _fac), rows in default_data.items():
        if file_type == "ef_in":
            for row in rows:
                key = (row[0], row[1], row[ef_col("admission_date")])
                ef_by_month[yyyymm][key].add(row[ef_col("discharge_date")])
    spanning = [
        key
        for key, discharges in ef_by_month[MONTHS[0]].items()
        if discharges == {"00000000"} and key in ef_by_month[MONTHS[1]]
    ]
    assert spanning
    # still admitted at the end of the last month: EF rows, no y1 case
    case_keys = {(f, p, a) for f, p, a, _s in cases}
    open_at_end = [
        key
        for key, discharges in ef_by_month[MONTHS[-1]].items()
        if discharges == {"00000000"} and key not in case_keys
    ]
    assert open_at_end

    # real Japanese text: kanji and half-width katakana
    names = [row[ef_col("item_name")] for (_m, t, _f), rows in default_data.items() if t == "ef_in" for row in rows]
    assert any(HALF_WIDTH_KATAKANA.search(n) for n in names)
    assert any(KANJI.search(n) for n in names)
    assert any(KANJI.search(row[16]) for row in y1_rows if row[5] == "A006010")


def test_ef_and_d_rows_agree_with_cases(default_data):
    cases = y1_cases(default_data)
    ef_col = formats.EF_IN.columns.index
    d_col = formats.D.columns.index
    # EF/D rows carry no admission_seq_no: two stays on one admission date share the key
    discharges_of: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for (f, p, a, _s), c in cases.items():
        discharges_of[(f, p, a)].add(c["discharge_date"])
    ffs, qty, detail, category, adm, performed, dis_at = (
        ef_col(c)
        for c in (
            "ffs_points",
            "quantity",
            "detail_no",
            "data_category",
            "admission_date",
            "performed_date",
            "discharge_date",
        )
    )
    signed = re.compile(r"-?[0-9]+").fullmatch
    quantity = re.compile(r"[0-9]{7}\.[0-9]{3}").fullmatch
    ffs_points = []
    for (yyyymm, file_type, _fac), rows in default_data.items():
        if file_type == "ef_in":
            for row in rows:
                assert signed(row[ffs])
                ffs_points.append(int(row[ffs]))
                assert quantity(row[qty])
                assert row[detail] == "000" or row[category] != "90"
                assert row[adm] <= row[performed]
                dis = row[dis_at]
                if dis != "00000000":
                    assert dis[:6] == yyyymm  # a discharge date only in the discharge month
                    assert row[performed] <= dis
                    key = (row[0], row[1], row[adm])
                    if key in discharges_of:
                        assert dis in discharges_of[key]
        elif file_type == "d":
            bundled = [r for r in rows if r[d_col("data_category")] == "93"]
            assert bundled
            for row in bundled:
                code = row[d_col("dpc_code")]
                assert len(code) == 14 and "01" <= code[:2] <= "18"
                assert re.fullmatch(r"[0-9]\.[0-9]{4}", row[d_col("hospital_coefficient")])
                assert row[d_col("calc_start_date")] <= row[d_col("calc_end_date")]
                assert row[d_col("calc_base_date")] == row[d_col("admission_date")]
    assert any(p < 0 for p in ffs_points)


def test_generator_histories_are_consistent():
    stays = list(generate_stays(2, ["202501", "202502"], seed=5, discharges_per_month=40))
    by_patient: dict[tuple[str, str], list[Stay]] = defaultdict(list)
    for stay in stays:
        by_patient[(stay.facility_cd, stay.patient_id)].append(stay)
    assert len({s.facility_cd for s in stays}) == 2
    for history in by_patient.values():
        assert history == sorted(history, key=lambda s: (s.admission_date, s.admission_seq_no))
        for prev, cur in itertools.pairwise(history):
            assert prev.discharge_date is not None, "a stay after one that never ended"
            assert prev.discharge_outcome not in ("6", "7"), "a stay after a death"
            assert cur.admission_date >= prev.discharge_date
    # only stays with days in the window are produced
    assert all(s.admission_date <= date(2025, 2, 28) for s in stays)
    assert all(s.discharge_date is None or s.discharge_date >= date(2025, 1, 1) for s in stays)
    assert len(set(map(Stay.key.fget, stays))) == len(stays)


# --------------------------------------------------------------------------------------------
# Determinism


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    def run(seed: int, name: str) -> dict[str, bytes]:
        out = tmp_path / name
        write_months(generate_stays(2, MONTHS[:2], seed, discharges_per_month=30), MONTHS[:2], out)
        return tree_bytes(out)

    first, again, other = run(7, "a"), run(7, "b"), run(8, "c")
    assert first == again
    assert len(first) == 2 * (3 * 2 + 1)
    assert first != other
    assert first.keys() != other.keys() or any(first[k] != other[k] for k in first)


def test_cli_is_deterministic_across_processes(tmp_path, capsys):
    """The module run in a fresh interpreter with another hash seed writes the same bytes."""
    args = ["--facilities", "2", "--months", "202503-202504", "--seed", "3", "--discharges-per-month", "15"]
    assert main([*args, "--out", str(tmp_path / "in_process"), "--quiet"]) == 0
    capsys.readouterr()
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins"), "PYTHONHASHSEED": "12345"}
    proc = subprocess.run(
        [sys.executable, "-m", "dpc_elt.dev.synthetic", *args, "--out", str(tmp_path / "sub"), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert len(proc.stdout.splitlines()) == 2
    assert tree_bytes(tmp_path / "in_process") == tree_bytes(tmp_path / "sub")


# --------------------------------------------------------------------------------------------
# write_months with hand-made stays


def hand_made_stays() -> list[Stay]:
    return [
        # across the March/April month end, with a ward transfer on 30 March
        Stay(
            F1,
            "P000000001",
            date(2025, 3, 28),
            discharge_date=date(2025, 4, 3),
            wards=("3A", "ICU"),
            ward_transfer_dates=(date(2025, 3, 30),),
            prev_discharge_date=date(2025, 3, 1),
            readmission_type="2",
            admission_type="301",
        ),
        # another facility in between: its files are written while F1's are parked
        Stay(F2, "P000000001", date(2025, 4, 10), discharge_date=date(2025, 4, 10), discharge_outcome="6"),
        # still admitted at the end of April
        Stay(F1, "P000000002", date(2025, 4, 30)),
        # discharged before the window: nothing at all
        Stay(F1, "P000000003", date(2025, 2, 10), discharge_date=date(2025, 2, 20)),
        # admitted in February, discharged in March: EF/D from 1 March only, y1 in March
        Stay(F1, "P000000004", date(2025, 2, 25), discharge_date=date(2025, 3, 5), comorbidities=["E119"]),
    ]


def test_write_months_places_rows_by_month(tmp_path):
    out = tmp_path / "raw"
    months = ["202503", "202504"]
    manifests = write_months(hand_made_stays(), months, out, created_at="2025-05-08T10:30:00+09:00", ef_rows_per_day=3)
    assert manifests == [out / f"yyyymm={m}" / "_manifest.json" for m in months]
    entries = {m: check_month_folder(out / f"yyyymm={m}", m) for m in months}
    for m in months:
        assert json.loads(manifests[months.index(m)].read_text())["created_at"] == "2025-05-08T10:30:00+09:00"
        assert len(entries[m]) == 6  # 2 facilities x 3 types, empty ones header-only
    data = load(out, months)
    ef = formats.EF_IN.columns.index
    y1 = formats.Y1.columns.index
    dc = formats.D.columns.index

    def pids(rows):
        return sorted({r[1] for r in rows})

    # y1 only in the discharge month
    assert pids(data[("202503", "y1", F1)]) == ["P000000004"]
    assert pids(data[("202504", "y1", F1)]) == ["P000000001"]
    assert data[("202503", "y1", F2)] == []
    assert pids(data[("202504", "y1", F2)]) == ["P000000001"]
    assert entries["202503"][f"FF1_{F2}_2503.txt"]["records"] == 0

    # EF rows in each month of the stay, 退院年月日 00000000 while still admitted at month end
    march = [r for r in data[("202503", "ef_in", F1)] if r[1] == "P000000001"]
    april = [r for r in data[("202504", "ef_in", F1)] if r[1] == "P000000001"]
    assert len(march) == 4 * 3 and len(april) == 3 * 3
    assert {r[ef("discharge_date")] for r in march} == {"00000000"}
    assert {r[ef("discharge_date")] for r in april} == {"20250403"}
    assert sorted({r[ef("performed_date")] for r in march}) == ["20250328", "20250329", "20250330", "20250331"]
    wards = {r[ef("performed_date")]: r[ef("ward_code")] for r in march}
    assert wards == {"20250328": "3A", "20250329": "3A", "20250330": "ICU", "20250331": "ICU"}
    assert [r[ef("detail_no")] for r in march[:3]] == ["000", "001", "002"]
    still = [r for r in data[("202504", "ef_in", F1)] if r[1] == "P000000002"]
    assert len(still) == 3 and {r[ef("discharge_date")] for r in still} == {"00000000"}
    assert not any(r[1] == "P000000002" for rows in data.values() for r in rows if len(r) == 17)
    early = [r for r in data[("202503", "ef_in", F1)] if r[1] == "P000000004"]
    assert sorted({r[ef("performed_date")] for r in early}) == [f"2025030{i}" for i in range(1, 6)]
    assert not any(r[1] == "P000000003" for rows in data.values() for r in rows)

    # D: a bundled 93 row per month of the stay
    for m, start, end, dis in (
        ("202503", "20250328", "20250331", "00000000"),
        ("202504", "20250401", "20250403", "20250403"),
    ):
        bundled = [r for r in data[(m, "d", F1)] if r[1] == "P000000001" and r[dc("data_category")] == "93"]
        assert len(bundled) == 1
        row = bundled[0]
        assert (row[dc("calc_start_date")], row[dc("calc_end_date")]) == (start, end)
        assert row[dc("calc_base_date")] == "20250328" and row[dc("discharge_date")] == dis
        assert row[dc("dpc_code")] == "050130xx9900xx"

    # y1 content of the transferred stay
    rows = data[("202504", "y1", F1)]
    whole = {r[y1("item_code")]: r for r in rows if r[y1("summary_no")] == "0"}
    assert set(whole) >= {"A000010", "A000020", "A000030", "A000070", "A000080", "A006010", "A006020", "A006030"}
    assert whole["A000020"][y1("payload_1")] == "20250328"
    assert whole["A000020"][y1("payload_5")] == "301"
    assert whole["A000030"][y1("payload_1")] == "20250403"
    assert whole["A000070"][y1("payload_1")] == "20250301"
    assert whole["A000080"][y1("payload_2")] == "2"
    assert whole["A006010"][y1("payload_2")] == "I509" and whole["A006010"][y1("payload_9")] == "心不全"
    segments = [r for r in rows if r[y1("summary_no")] != "0"]
    assert [(r[y1("summary_no")], r[y1("payload_1")], r[y1("payload_2")], r[y1("payload_3")]) for r in segments] == [
        ("1", "3A", "20250328", "20250329"),
        ("2", "ICU", "20250330", "20250403"),
    ]
    # no previous discharge reported: the sentinel; comorbidities as A006040
    march_rows = data[("202503", "y1", F1)]
    assert [r[y1("payload_1")] for r in march_rows if r[y1("item_code")] == "A000070"] == ["00000000"]
    assert [r[y1("payload_2")] for r in march_rows if r[y1("item_code")] == "A006040"] == ["E119"]
    # the death at F2
    f2 = {r[y1("item_code")]: r for r in data[("202504", "y1", F2)]}
    assert f2["A000030"][y1("payload_3")] == "6"


def test_write_months_empty_facility_and_months_not_requested(tmp_path):
    stays = [Stay(F1, "P000000009", date(2025, 3, 30), discharge_date=date(2025, 5, 2))]
    write_months(stays, ["202505", "202503"], tmp_path, facilities=[F2])
    data = load(tmp_path, ["202503", "202505"])
    assert not (tmp_path / "yyyymm=202504").exists()
    assert len(data[("202503", "ef_in", F1)]) == 2 * synthetic.DEFAULT_EF_ROWS_PER_DAY
    assert len(data[("202505", "ef_in", F1)]) == 2 * synthetic.DEFAULT_EF_ROWS_PER_DAY
    assert data[("202503", "y1", F1)] == [] and data[("202505", "y1", F1)] != []
    assert all(rows == [] for (m, t, f), rows in data.items() if f == F2)
    for m in ("202503", "202505"):
        check_month_folder(tmp_path / f"yyyymm={m}", m)


def test_write_months_rejects_what_the_contract_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="at least one file"):
        write_months([], ["202503"], tmp_path / "empty")
    stay = Stay(F1, "P000000001", date(2025, 3, 1))
    for bad in ("2025-05-08 09:00:00+09:00", "2025-05-08T09:00:00", "yesterday"):
        with pytest.raises(ValueError, match="created_at"):
            write_months([stay], ["202503"], tmp_path / "bad", created_at=bad)
    with pytest.raises(ValueError, match="time zone"):
        write_months([stay], ["202503"], tmp_path / "bad", created_at=datetime(2025, 5, 8, 9))
    assert not (tmp_path / "bad").exists()
    jst = timezone(timedelta(hours=9))
    (manifest,) = write_months([stay], ["202503"], tmp_path / "ok", created_at=datetime(2025, 4, 8, 9, tzinfo=jst))
    assert json.loads(manifest.read_text())["created_at"] == "2025-04-08T09:00:00+09:00"
    with pytest.raises(ValueError, match="YYYYMM"):
        write_months([stay], ["2025-03"], tmp_path / "bad")


def test_stay_validation():
    with pytest.raises(ValueError, match="patient_id"):
        Stay(F1, "short", date(2025, 3, 1))
    with pytest.raises(ValueError, match="facility_cd"):
        Stay("12345", "P000000001", date(2025, 3, 1))
    with pytest.raises(ValueError, match="discharge_date"):
        Stay(F1, "P000000001", date(2025, 3, 5), discharge_date=date(2025, 3, 1))
    with pytest.raises(ValueError, match="dpc_code"):
        Stay(F1, "P000000001", date(2025, 3, 1), dpc_code="99")
    with pytest.raises(ValueError, match="TAB"):
        Stay(F1, "P000000001", date(2025, 3, 1), disease_name="心\t不全")
    with pytest.raises(UnicodeEncodeError):
        Stay(F1, "P000000001", date(2025, 3, 1), disease_name="心不全\u2603")
    with pytest.raises(ValueError, match="ward"):
        Stay(F1, "P000000001", date(2025, 3, 1), discharge_date=date(2025, 3, 1), wards=("3A", "ICU"))
    stay = Stay(F1, "P000000001", date(2025, 3, 1), discharge_date=date(2025, 3, 10), wards=["3A", "ICU"])
    assert stay.wards == ("3A", "ICU")  # lists become tuples: stays stay hashable
    assert stay.ward_spans() == (
        ("3A", date(2025, 3, 1), date(2025, 3, 5)),
        ("ICU", date(2025, 3, 6), date(2025, 3, 10)),
    )
    # dataclasses.replace recomputes the derived ward spans
    shorter = dataclasses.replace(stay, discharge_date=date(2025, 3, 4))
    assert shorter.ward_spans()[-1] == ("ICU", date(2025, 3, 3), date(2025, 3, 4))
    assert len({stay, shorter, dataclasses.replace(stay)}) == 2


# --------------------------------------------------------------------------------------------
# CLI


def test_cli_smoke(tmp_path, capsys):
    out = tmp_path / "raw"
    code = main(
        [
            "--facilities",
            "2",
            "--months",
            "202512-202601",
            "--out",
            str(out),
            "--seed",
            "4",
            "--discharges-per-month",
            "10",
            "--ef-rows-per-day",
            "4",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["202512", "202601"]
    for line in lines:
        assert re.fullmatch(r"[0-9]{6}: 6 files, rows y1=[0-9]+ ef_in=[0-9]+ d=[0-9]+", line), line
    assert captured.err.count("[synthetic]") >= 2  # progress on stderr without --quiet
    manifest = json.loads((out / "yyyymm=202512" / "_manifest.json").read_text())
    assert manifest["created_at"] == "2026-01-08T09:00:00+09:00"  # year rolls over
    check_month_folder(out / "yyyymm=202601", "202601")
    # counts only: no patient id or facility code reaches the console
    pids = {row[1] for rows in load(out, ["202512", "202601"]).values() for row in rows}
    facility_codes = {e["facility_cd"] for e in manifest["files"]}
    for text in (captured.out, captured.err):
        assert not any(pid in text for pid in pids)
        assert not any(fac in text for fac in facility_codes)


def test_cli_rejects_bad_months(tmp_path, capsys):
    assert main(["--months", "202513", "--out", str(tmp_path)]) == 2
    assert "month" in capsys.readouterr().err
    assert synthetic.parse_months("202503-202505,202501") == ["202501", "202503", "202504", "202505"]


def test_progress_lines_count_every_row_per_facility_month_and_file_type(tmp_path, capsys):
    out = tmp_path / "raw"
    args = ["--facilities", "3", "--months", "202503-202505", "--out", str(out), "--seed", "9"]
    assert main([*args, "--discharges-per-month", "8", "--ef-rows-per-day", "3"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert all(line.startswith("[synthetic] ") for line in err)
    manifests = {
        m: json.loads((out / f"yyyymm={m}" / "_manifest.json").read_text()) for m in ("202503", "202504", "202505")
    }
    total = sum(f["records"] for m in manifests.values() for f in m["files"])

    facility = [
        re.fullmatch(
            r"\[synthetic\] facility (\d+) done: y1=(\d+) ef_in=(\d+) d=(\d+) rows; "
            r"([\d,]+) rows written, [\d,]+ rows/s",
            line,
        )
        for line in err[:3]
    ]
    assert all(facility), err[:3]
    assert [int(m[1]) for m in facility] == [1, 2, 3]
    running = 0
    for match in facility:  # the running total grows by each facility's rows
        running += sum(int(match[k]) for k in (2, 3, 4))
        assert int(match[5].replace(",", "")) == running
    for file_type, group in (("y1", 2), ("ef_in", 3), ("d", 4)):
        written = sum(int(m[group]) for m in facility)
        assert written == sum(
            f["records"] for m in manifests.values() for f in m["files"] if f["file_type"] == file_type
        )

    months = [
        re.fullmatch(
            r"\[synthetic\] month (\d)/3 (\d{6}): manifest written, (\d+) files, "
            r"y1=(\d+) ef_in=(\d+) d=(\d+) rows, bytes .*",
            line,
        )
        for line in err[3:6]
    ]
    assert all(months), err[3:6]
    for n, match in enumerate(months, start=1):
        manifest = manifests[match[2]]
        assert int(match[1]) == n and int(match[3]) == len(manifest["files"]) == 9
        for file_type, group in (("y1", 4), ("ef_in", 5), ("d", 6)):
            assert int(match[group]) == sum(f["records"] for f in manifest["files"] if f["file_type"] == file_type)
    done = re.fullmatch(r"\[synthetic\] done: 3 months, 27 files, ([\d,]+) rows in [\d.,]+ s \([\d,]+ rows/s\)", err[6])
    assert done and int(done[1].replace(",", "")) == total
    assert len(err) == 7


def test_quiet_writes_no_progress(tmp_path, capsys):
    args = ["--facilities", "1", "--months", "202504", "--out", str(tmp_path), "--discharges-per-month", "3"]
    assert main([*args, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("202504: 3 files")
