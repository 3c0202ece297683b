"""A one-facility reload (issue 16 §1): a hospital resubmits its own files of a month.

Three facilities, three months, run through every step as the DAG does; then facility A (and, in the
second order, facility B) resubmits 202502 — cases dropped and added, one a readmission of a January
case — with the month's manifest re-issued (the other facilities' entries and files unchanged). Proved:

* the reload replaces only that facility's rows: every other facility's rows of every table are
  byte-identical, and every month that was not re-exported keeps its files byte for byte;
* the result equals loading the corrected month whole (every table, every export, the contract);
* two facilities reloaded in either order give the same tables;
* a bad file of that facility, or a line of another facility in it, is refused whole with nothing changed;
* rollback_stage of a facility run removes that facility's stage rows of the month only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from dpc_elt.backends import embedded
from dpc_elt.core import settings
from dpc_elt.core.errors import ManifestError, RawFileError
from dpc_elt.core.manifest import RULE_LINE_OTHER_FACILITY
from dpc_elt.dev import synthetic
from tests.contract import expected_summary, summary_by_key
from tests.reliability import support

MONTHS = synthetic.month_range("202501", "202503")
RESUBMITTED = "202502"
FACILITIES = ["131000123", "271000456", "401000789"]
A, B, C = FACILITIES


def corrected(stays: list[synthetic.Stay], facility: str) -> list[synthetic.Stay]:
    """``facility``'s 202502 delivered again: some of its February discharges dropped, a readmission of a
    January discharge and two new cases added. Only patients' last stays are dropped or readmitted, so
    202503 keeps its rows (a month the reload must not export). Other facilities' stays are untouched."""
    first, last = synthetic._month_bounds(RESUBMITTED)
    ours = [s for s in stays if s.facility_cd == facility]
    latest: dict[str, synthetic.Stay] = {}
    for stay in sorted(ours, key=lambda s: s.admission_date):
        latest[stay.patient_id] = stay
    last_stays = [s for s in latest.values() if s.discharge_date]
    february = [s for s in last_stays if first <= s.discharge_date <= last]
    january = sorted((s for s in last_stays if s.discharge_date < first), key=lambda s: s.discharge_date)
    assert len(february) >= 2 and january, "the scenario must end stays of the facility in 202501 and 202502"
    dropped = {s.key for s in february[::2]}
    out = [s for s in stays if s.key not in dropped]
    readmitted = january[-1]
    admitted = max(readmitted.discharge_date + timedelta(days=2), first)
    out.append(
        dataclasses.replace(
            readmitted,
            admission_date=admitted,
            discharge_date=admitted + timedelta(days=5),
            admission_type="200",
            wards=("3A",),
            ward_transfer_dates=(),
        )
    )
    for n in range(2):
        out.append(
            synthetic.Stay(
                facility,
                f"RSB{facility[-3:]}000{n}",
                first + timedelta(days=5 + n),
                discharge_date=first + timedelta(days=12 + n),
                admission_type="301",
            )
        )
    return out


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory):
    """The three months as first delivered; 202502 resubmitted by A; 202502 resubmitted by A and by B."""
    stays = list(synthetic.generate_stays(FACILITIES, MONTHS, seed=23, discharges_per_month=12))
    base = tmp_path_factory.mktemp("facility_reload")
    synthetic.write_months(stays, MONTHS, base / "first" / "raw", ef_rows_per_day=1)
    by_a = corrected(stays, A)
    synthetic.write_months(by_a, [RESUBMITTED], base / "by_a" / "raw", ef_rows_per_day=1)
    synthetic.write_months(corrected(by_a, B), [RESUBMITTED], base / "by_a_and_b" / "raw", ef_rows_per_day=1)
    return {name: base / name / "raw" for name in ("first", "by_a", "by_a_and_b")}


def month_folder(raw: Path, yyyymm: str = RESUBMITTED) -> Path:
    return raw / f"yyyymm={yyyymm}"


def deliver(cfg: settings.Settings, raw: Path) -> None:
    """The resubmission lands: the month folder as the corrected delivery has it."""
    shutil.rmtree(support.month_dir(cfg, RESUBMITTED))
    shutil.copytree(month_folder(raw), support.month_dir(cfg, RESUBMITTED))


def warehouse(tmp_path: Path, dbt, raw: Path, name: str) -> settings.Settings:
    """The three months of ``raw`` loaded whole, in order, through every step."""
    cfg = support.cfg_under(tmp_path / name)
    shutil.copytree(raw, cfg.raw_root)
    for yyyymm in MONTHS:
        support.pipeline_month(cfg, dbt, yyyymm)
    return cfg


def rows_of_others(cfg: settings.Settings, facility: str) -> dict[str, tuple[int, str]]:
    """Every table with a facility_cd column: count and digest of the rows of every OTHER facility."""
    out = {}
    with support.connect(cfg) as con:
        for schema, table, _ in support.tables(con):
            columns = {r[0] for r in con.execute(f'describe "{schema}"."{table}"').fetchall()}
            if "facility_cd" in columns:
                rows = con.execute(
                    f'select * from "{schema}"."{table}" where facility_cd <> ? order by all', [facility]
                ).fetchall()
                out[f"{schema}.{table}"] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    assert "raw.y1" in out and "mart.fact_case_summary" in out and "stage.stg_dpc__y1_cases" in out
    return out


def export_files(cfg: settings.Settings) -> dict[str, dict[str, str]]:
    """Every exported month: SHA-256 of every file in its folder (the manifest with its created_at)."""
    root = Path(cfg.processed_root)
    return {
        folder.name: {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}
        for folder in sorted(root.glob("yyyymm=*"))
    }


def assert_contract(cfg: settings.Settings) -> None:
    expected = expected_summary(cfg.raw_root, set(MONTHS))
    assert support.mart_summary(cfg) == expected
    exports = support.export_content(cfg)
    for month in MONTHS:
        exported = summary_by_key(*exports[month]["rows"]["fact_case_summary.parquet"])
        assert exported == support.of_month(expected, month), f"export of {month}"
    assert not support.duplicates(cfg)


def test_a_facility_reload_changes_only_its_rows_and_equals_a_full_reload(tmp_path, dbt, deliveries):
    for name, raw in deliveries.items():  # the resubmission brings other facilities' files unchanged
        if name != "first":
            for other in (C,):
                for path in month_folder(raw).glob(f"*_{other}_*.txt"):
                    assert path.read_bytes() == (month_folder(deliveries["first"]) / path.name).read_bytes()

    cfg = warehouse(tmp_path, dbt, deliveries["first"], "reloaded")
    others_before, exports_before = rows_of_others(cfg, A), export_files(cfg)
    deliver(cfg, deliveries["by_a"])
    exported = support.pipeline_month(cfg, dbt, RESUBMITTED, facility_cd=A)

    assert rows_of_others(cfg, A) == others_before  # B's and C's rows, byte for byte, in every table
    exports_after = export_files(cfg)
    untouched = [m for m in MONTHS if m not in exported]
    assert untouched == ["202503"], exported  # the scenario changes A's rows of 202501 and 202502 only
    for month in untouched:
        assert exports_after[f"yyyymm={month}"] == exports_before[f"yyyymm={month}"], month
    assert_contract(cfg)
    with support.connect(cfg) as con:
        new = con.execute("select count(*) from mart.fact_case_summary where patient_id like 'RSB%'").fetchone()[0]
    assert new == 2

    whole = warehouse(tmp_path, dbt, deliveries["first"], "whole")
    deliver(whole, deliveries["by_a"])
    support.pipeline_month(whole, dbt, RESUBMITTED)
    assert support.fingerprint(cfg) == support.fingerprint(whole)
    assert support.export_content(cfg) == support.export_content(whole)


def test_two_facilities_reloaded_in_either_order_give_the_same_tables(tmp_path, dbt, deliveries):
    prints = []
    for name, order in {"a_then_b": [A, B], "b_then_a": [B, A]}.items():
        cfg = warehouse(tmp_path, dbt, deliveries["first"], name)
        deliver(cfg, deliveries["by_a_and_b"])
        for facility in order:
            support.pipeline_month(cfg, dbt, RESUBMITTED, facility_cd=facility)
        assert_contract(cfg)
        prints.append((support.fingerprint(cfg), support.export_content(cfg)))
    assert prints[0] == prints[1]


def set_field(index: int, value: bytes):
    def edit(line: bytes) -> bytes:
        fields = line.split(b"\t")
        fields[index] = value
        return b"\t".join(fields)

    return edit


def test_a_bad_resubmission_of_the_facility_is_refused_whole_and_changes_nothing(tmp_path, dbt, deliveries):
    cfg = warehouse(tmp_path, dbt, deliveries["first"], "refused")
    deliver(cfg, deliveries["by_a"])
    before, exports_before = support.fingerprint(cfg), export_files(cfg)

    # A's EF with a broken date on line 3, its manifest entry updated: validation passes, copy_raw refuses.
    ef = support.rewrite_file(cfg, RESUBMITTED, f"EFn_{A}", support.edit_line(3, set_field(3, b"2025021")))
    with pytest.raises(RawFileError) as refused:
        support.load_raw(cfg, RESUBMITTED, facility_cd=A)
    assert refused.value.file == ef and refused.value.line == 3
    assert support.fingerprint(cfg) == before

    # A's D file holding a line of facility C: refused by validate_manifest, before any SQL.
    deliver(cfg, deliveries["by_a"])
    d = support.rewrite_file(cfg, RESUBMITTED, f"Dn_{A}", support.edit_line(2, set_field(0, C.encode())))
    with pytest.raises(ManifestError, match=RULE_LINE_OTHER_FACILITY) as foreign:
        support.load_raw(cfg, RESUBMITTED, facility_cd=A)
    assert foreign.value.file.endswith(d) and foreign.value.line == 2
    assert support.fingerprint(cfg) == before and export_files(cfg) == exports_before


def test_rollback_of_a_facility_run_removes_only_its_stage_rows(tmp_path, dbt, deliveries):
    cfg = warehouse(tmp_path, dbt, deliveries["first"], "rollback")
    others = rows_of_others(cfg, A)
    deleted = embedded.EmbeddedBackend(cfg).rollback_stage(RESUBMITTED, A)
    assert deleted["stg_dpc__y1_cases"] > 0
    with support.connect(cfg) as con:
        for table in settings.STAGE_TABLES:
            left = con.execute(
                f'select count(*) from stage."{table}" where yyyymm = ? and facility_cd = ?', [RESUBMITTED, A]
            ).fetchone()[0]
            assert left == 0, table
    after = rows_of_others(cfg, A)
    assert {k: v for k, v in after.items() if k.startswith("stage.")} == {
        k: v for k, v in others.items() if k.startswith("stage.")
    }
