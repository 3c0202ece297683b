"""The embedded warehouse steps on their own: load, rollback and export, each one month, atomically."""

from __future__ import annotations

import dataclasses
import hashlib
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
