"""The embedded warehouse steps on their own: load, rollback and export, each one month, atomically."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from dpc_elt.backends import embedded
from dpc_elt.core import settings
from dpc_elt.core.errors import RawFileError
from dpc_elt.core.manifest import validate_month
from dpc_elt.dev.synthetic import Stay, write_months

FACILITY = "131000123"


def stays() -> list[Stay]:
    return [
        Stay(FACILITY, "P000000001", date(2025, 3, 3), discharge_date=date(2025, 3, 9)),
        Stay(FACILITY, "P000000001", date(2025, 3, 20), discharge_date=date(2025, 4, 2), admission_type="200"),
        Stay(FACILITY, "P000000002", date(2025, 4, 10), discharge_date=date(2025, 4, 12), wards=("3A", "ICU")),
    ]


@pytest.fixture
def cfg(tmp_path) -> settings.Settings:
    base = settings.get_settings()
    data = tmp_path / "data"
    cfg = dataclasses.replace(
        base,
        raw_root=str(data / "raw"),
        processed_root=str(data / "processed"),
        duckdb_path=str(data / "warehouse" / "dpc.duckdb"),
        work_dir=str(data / "work"),
        outbox_path=str(data / "outbox.jsonl"),
    )
    write_months(stays(), ["202503", "202504"], cfg.raw_root)
    return cfg


def load(cfg: settings.Settings, yyyymm: str) -> dict[str, int]:
    return embedded.EmbeddedBackend(cfg).load_month(yyyymm, validate_month(cfg.raw_root, yyyymm))


def warehouse(cfg: settings.Settings) -> duckdb.DuckDBPyConnection:
    Path(cfg.duckdb_path).parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(cfg.duckdb_path)


def table(cfg: settings.Settings, sql: str) -> list[tuple]:
    with duckdb.connect(cfg.duckdb_path) as con:
        return con.execute(sql).fetchall()


def rewrite(cfg: settings.Settings, yyyymm: str, prefix: str, edit) -> None:
    """Change one file and keep its manifest entry consistent, so only the load can object."""
    folder = Path(cfg.raw_root) / f"yyyymm={yyyymm}"
    manifest = json.loads((folder / "_manifest.json").read_text())
    entry = next(f for f in manifest["files"] if f["path"].startswith(prefix))
    data = edit((folder / entry["path"]).read_bytes())
    (folder / entry["path"]).write_bytes(data)
    entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), records=data.count(b"\r\n") - 1)
    (folder / "_manifest.json").write_text(json.dumps(manifest))


def test_load_counts_every_data_line_with_lineage(cfg):
    manifest = validate_month(cfg.raw_root, "202504")
    counts = load(cfg, "202504")
    for file_type, count in counts.items():
        assert count == sum(f.records for f in manifest.files if f.file_type == file_type)
    rows = table(cfg, 'select yyyymm, source_file, min(line_no) from "raw".y1 group by all')
    assert rows == [("202504", f"FF1_{FACILITY}_2504.txt", 2)]  # line 1 is the header


def test_reload_replaces_the_month_and_keeps_the_others(cfg):
    load(cfg, "202503")
    first = load(cfg, "202504")
    again = load(cfg, "202504")
    assert first == again
    per_month = dict(table(cfg, 'select yyyymm, count(*) from "raw".ef_in group by yyyymm'))
    assert per_month["202504"] == first["ef_in"] and per_month["202503"] > 0


def test_a_bad_line_loads_nothing_and_names_file_and_line(cfg):
    load(cfg, "202503")
    load(cfg, "202504")
    before = table(cfg, 'select yyyymm, count(*) from "raw".d group by yyyymm order by 1')

    def extra_field_on_line_3(data: bytes) -> bytes:
        lines = data.split(b"\r\n")
        lines[2] += b"\tEXTRA"
        return b"\r\n".join(lines)

    rewrite(cfg, "202504", "EFn_", extra_field_on_line_3)
    with pytest.raises(RawFileError, match=rf"EFn_{FACILITY}_2504.txt:3: wrong number of fields"):
        load(cfg, "202504")
    assert table(cfg, 'select yyyymm, count(*) from "raw".d group by yyyymm order by 1') == before


def test_a_repeated_y1_case_block_is_refused(cfg):
    def repeat_first_data_line(data: bytes) -> bytes:
        lines = data.split(b"\r\n")
        return b"\r\n".join([*lines[:2], lines[1], *lines[2:]])

    rewrite(cfg, "202504", "FF1_", repeat_first_data_line)
    with pytest.raises(RawFileError, match=rf"FF1_{FACILITY}_2504.txt:3: y1 item repeated"):
        load(cfg, "202504")
    # The month was the first ever loaded: the rolled-back transaction leaves not even the tables.
    assert table(cfg, "select count(*) from information_schema.tables where table_schema = 'raw'") == [(0,)]


def test_a_file_changed_after_validation_is_refused(cfg):
    manifest = validate_month(cfg.raw_root, "202504")
    path = Path(cfg.raw_root) / "yyyymm=202504" / f"Dn_{FACILITY}_2504.txt"
    path.write_bytes(path.read_bytes().replace(b"1.4523", b"1.4524"))
    with pytest.raises(RawFileError, match="file changed since validation"):
        embedded.EmbeddedBackend(cfg).load_month("202504", manifest)


def test_rollback_removes_only_the_month_from_stage(cfg):
    with warehouse(cfg) as con:
        con.execute("create schema stage")
        con.execute("create table stage.stg_dpc__d as select * from (values ('202503', 1), ('202504', 2)) t(yyyymm, x)")
    # The other stage tables do not exist yet (a first run that failed early): they are skipped.
    assert embedded.EmbeddedBackend(cfg).rollback_stage("202504") == {"stg_dpc__d": 1}
    assert table(cfg, "select yyyymm from stage.stg_dpc__d") == [("202503",)]
    assert embedded.EmbeddedBackend(cfg).rollback_stage("202504") == {"stg_dpc__d": 0}


def test_export_clears_the_prefix_and_is_byte_identical_on_rerun(cfg):
    with warehouse(cfg) as con:
        con.execute("create schema mart")
        con.execute(
            "create table mart.fact_case_summary as select * from (values "
            "('202504', '131000123', 'P000000002', date '2025-04-10', 1), "
            "('202503', '131000123', 'P000000001', date '2025-03-03', 1)) "
            "t(yyyymm, facility_cd, patient_id, admission_date, admission_seq_no)"
        )
    folder = Path(cfg.processed_root) / "yyyymm=202504"
    folder.mkdir(parents=True)
    (folder / "part-stale.parquet").write_bytes(b"left over from an older run")

    (written,) = embedded.EmbeddedBackend(cfg).export_months(["202504"])
    first = (folder / "fact_case_summary.parquet").read_bytes()
    embedded.EmbeddedBackend(cfg).export_months(["202504"])

    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", "fact_case_summary.parquet"]
    assert (folder / "fact_case_summary.parquet").read_bytes() == first
    manifest = json.loads((folder / "_manifest.json").read_text())
    (entry,) = manifest["files"]
    assert entry["rows"] == 1 and entry["sha256"] == hashlib.sha256(first).hexdigest()
    assert manifest["compression"] == "snappy" and written["files"] == manifest["files"]


def test_every_warehouse_connection_carries_the_memory_cap(cfg):
    capped = dataclasses.replace(cfg, duckdb_memory_limit="256MiB")
    with embedded.connect(capped) as con:
        assert con.execute("select current_setting('memory_limit')").fetchone() == ("256.0 MiB",)


# ----------------------------------------------------------------------- copy_raw in parallel pieces


@pytest.fixture
def tiny_pieces(monkeypatch):
    """Worker processes and pieces of a few hundred bytes: every file is cut many times."""
    from dpc_elt.backends import embedded_load
    from dpc_elt.core import rawfile

    cuts = []
    real_bounds = rawfile.piece_bounds

    def small_bounds(handle, size, piece_bytes=rawfile.PIECE_BYTES):
        bounds = real_bounds(handle, size, 300)
        cuts.append(len(bounds))
        return bounds

    monkeypatch.setattr(rawfile, "piece_bounds", small_bounds)
    monkeypatch.setattr(embedded_load, "PARALLEL_FROM_BYTES", 0)
    return cuts


def raw_rows(cfg: settings.Settings) -> dict[str, list[tuple]]:
    return {
        name: table(cfg, f'select * from "raw".{name} order by source_file, line_no') for name in ("y1", "ef_in", "d")
    }


def test_pieces_in_worker_processes_load_exactly_the_rows_of_one_piece(cfg, tmp_path, tiny_pieces):
    load(cfg, "202504")
    in_pieces = raw_rows(cfg)
    assert max(tiny_pieces) > 5, "the files were cut into many pieces"
    whole = dataclasses.replace(cfg, duckdb_path=str(tmp_path / "whole.duckdb"))
    tiny_pieces.clear()
    from dpc_elt.backends import embedded_load
    from dpc_elt.core import rawfile

    with pytest.MonkeyPatch.context() as undo:
        undo.setattr(rawfile, "piece_bounds", lambda handle, size, piece_bytes=0: [(0, size)] if size else [])
        undo.setattr(embedded_load, "PARALLEL_FROM_BYTES", 10**12)
        load(whole, "202504")
    assert raw_rows(whole) == in_pieces
    assert [row[2] for row in in_pieces["ef_in"]] == list(range(2, len(in_pieces["ef_in"]) + 2))


@pytest.mark.parametrize(
    ("edit", "rule"),
    [
        (lambda line: line.replace(b"\t20250", b"\t20251", 1), "impossible date"),  # month 13 or more
        (lambda line: line + b"\tone field too many", "wrong number of fields"),
        (lambda line: line[:4] + b"\x00" + line[4:], "NUL byte"),
    ],
    ids=["date", "fields", "nul"],
)
def test_a_bad_line_deep_in_a_file_is_named_exactly_whatever_the_pieces(cfg, tiny_pieces, edit, rule):
    from dpc_elt.core import rawfile

    def spoil(data: bytes) -> bytes:
        lines = data.split(b"\r\n")
        lines[-5] = edit(lines[-5])
        return b"\r\n".join(lines)

    load(cfg, "202503")
    before = raw_rows(cfg)
    rewrite(cfg, "202504", "EFn_", spoil)
    folder = Path(cfg.raw_root) / "yyyymm=202504"
    (ef,) = folder.glob("EFn_*")
    bad_line = ef.read_bytes().count(b"\r\n") - 3
    with pytest.raises(RawFileError) as raised:
        load(cfg, "202504")
    assert (raised.value.file, raised.value.line) == (ef.name, bad_line)
    assert raised.value.rule.startswith(rule)
    with open(ef, "rb") as src, pytest.raises(RawFileError) as one_by_one:  # as the line-by-line check says
        rawfile.stage_raw_file(src, io.StringIO(), file_type="ef_in", source_file=ef.name, yyyymm="202504")
    assert str(raised.value) == str(one_by_one.value)
    assert raw_rows(cfg) == before  # nothing of the month loaded, the month before untouched


DATES = [
    "20240229", "20230229", "20241301", "20240100", "20240131", "20240431", "00000000", "99999999",
    "00010101", "00000101", "99991231", "2024022", "202402290", "2024-2-1", "２０２４０２２９", "",
    " 2024022", "2024022 ", "1900\u30000101",
]  # fmt: skip
DPC_PAIRS = [
    ("93", ""), (" 93", ""), ("\u300093", ""), ("93\u3000", ""), ("9 3", ""), ("94", ""), ("", ""),
    ("93", "123456xxxxxxxx"), ("93", "12345xxxxxxxxx"), ("", "123456789012345"), ("", "12345678901234"),
    ("93", "123456XXXXXXXX"), ("90", "１２３４５６xxxxxxxx"),
]  # fmt: skip


def test_the_warehouse_checks_dates_and_dpc_codes_exactly_as_the_line_checks_do(tmp_path):
    """find_files_breaking_field_rules.sql flags a line exactly when rawfile would reject it."""
    from dpc_elt.backends.embedded_load import field_rule_identifiers
    from dpc_elt.core import formats, rawfile

    layout = formats.D
    cfg = dataclasses.replace(settings.get_settings(), duckdb_path=str(tmp_path / "rules.duckdb"))
    cases = [(date_value, ("90", "")) for date_value in DATES] + [("20240101", pair) for pair in DPC_PAIRS]
    expected = set()
    with embedded.connect(cfg) as con:
        identifiers = {"schema": settings.RAW_SCHEMA, "table": layout.raw_table}
        embedded.run_file(con, "copy_raw/create_raw_table", {}, **identifiers, columns=layout.columns)
        for number, (date_value, (category, code)) in enumerate(cases):
            fields = dict.fromkeys(layout.columns, "")
            fields |= {"discharge_date": "20240101", "admission_date": "20240101", "calc_start_date": date_value}
            fields |= {"data_category": category, "dpc_code": code}
            con.execute(
                f'insert into "raw".d values (?, ?, ?, {", ".join("?" for _ in layout.columns)})',
                ["202504", str(number), 1, *fields.values()],
            )
            if not (date_value == "" or rawfile.is_valid_date(date_value)) or rawfile.dpc_code_rule(category, code):
                expected.add(str(number))
        found = embedded.run_file(
            con, "copy_raw/find_files_breaking_field_rules", {"yyyymm": "202504"}, **identifiers,
            **field_rule_identifiers(layout),
        )  # fmt: skip
    assert {row[0] for row in found} == expected
    assert len(expected) > 10 and len(expected) < len(cases)  # both kinds of line are present
