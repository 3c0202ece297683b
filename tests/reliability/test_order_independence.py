"""Order independence: six months loaded in several orders, with reloads and a corrected month.

After every single month (validate → load → dbt → compute_readmit → export, as the DAG does it),
``mart.fact_case_summary`` must equal contract §3 computed independently over the y1 files of the
months loaded so far, and so must the exported Parquet of every loaded month. At the end, every
table of every order holds the same rows.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta

import pytest

from dpc_elt.dev import synthetic
from tests.contract import expected_summary, summary_by_key
from tests.reliability import support

MONTHS = synthetic.month_range("202501", "202506")
CORRECTED = "202503"


@pytest.fixture(scope="module")
def six_months(tmp_path_factory):
    """Six months of two facilities (seeded) as delivered, and a corrected delivery of 202503."""
    stays = list(synthetic.generate_stays(2, MONTHS, seed=11, discharges_per_month=15))
    raw = tmp_path_factory.mktemp("six") / "raw"
    synthetic.write_months(stays, MONTHS, raw, ef_rows_per_day=1)
    corrected = tmp_path_factory.mktemp("corrected") / "raw"
    synthetic.write_months(corrected_stays(stays), [CORRECTED], corrected, ef_rows_per_day=1)
    return raw, corrected


def corrected_stays(stays: list[synthetic.Stay]) -> list[synthetic.Stay]:
    """202503 delivered again: some of its cases dropped, new ones added — one of them a readmission of
    a February case, and one re-reporting a February case key with a March discharge (the later month
    wins)."""
    first, last = synthetic._month_bounds(CORRECTED)
    in_march = [s for s in stays if s.discharge_date and first <= s.discharge_date <= last]
    dropped = {s.key for s in in_march[::3]}
    assert dropped, "the scenario must discharge cases in 202503"
    out = [s for s in stays if s.key not in dropped]
    february = sorted(
        (s for s in stays if s.discharge_date and s.discharge_date.strftime("%Y%m") == "202502"),
        key=lambda s: (s.discharge_date, s.key),
    )
    readmitted = february[-1]  # the last February discharge: its readmission ends in March
    assert (readmitted.discharge_date + timedelta(days=9)).strftime("%Y%m") == CORRECTED
    out.append(
        dataclasses.replace(
            readmitted,
            admission_date=readmitted.discharge_date + timedelta(days=3),
            discharge_date=readmitted.discharge_date + timedelta(days=9),
            admission_type="200",
            wards=("3A",),
            ward_transfer_dates=(),
        )
    )
    re_reported = february[0]
    out.append(
        dataclasses.replace(
            re_reported, discharge_date=first + timedelta(days=2), wards=("3A",), ward_transfer_dates=()
        )
    )
    for n in range(3):
        out.append(
            synthetic.Stay(
                in_march[0].facility_cd,
                f"NEW000000{n}",
                first + timedelta(days=4 + n),
                discharge_date=first + timedelta(days=10 + n),
                admission_type="301",
            )
        )
    return out


def load_in_order(tmp_path, dbt, raw, corrected, order: list[str | tuple[str, str]]):
    """Load ``order`` (a month, or ("correct", month) to deliver and load the corrected month) into a
    fresh warehouse, checking the contract after every step; return the final fingerprint."""
    cfg = support.cfg_under(tmp_path)
    shutil.copytree(raw, cfg.raw_root)
    loaded: set[str] = set()
    for step in order:
        if isinstance(step, tuple):
            _, yyyymm = step
            shutil.rmtree(support.month_dir(cfg, yyyymm))
            shutil.copytree(corrected / f"yyyymm={yyyymm}", support.month_dir(cfg, yyyymm))
        else:
            yyyymm = step
        support.pipeline_month(cfg, dbt, yyyymm)
        loaded.add(yyyymm)
        expected = expected_summary(cfg.raw_root, loaded)
        assert support.mart_summary(cfg) == expected, f"mart after {step}"
        exports = support.export_content(cfg)
        assert sorted(exports) == sorted(loaded), f"exported months after {step}"
        for month in sorted(loaded):
            exported = summary_by_key(*exports[month]["rows"]["fact_case_summary.parquet"])
            assert exported == support.of_month(expected, month), f"export of {month} after {step}"
        assert not support.duplicates(cfg), f"duplicates after {step}"
    return cfg, support.fingerprint(cfg)


FIX = ("correct", CORRECTED)
ORDERS = {
    # the corrected 202503 delivered before its month was ever loaded
    "chronological": ["202501", "202502", FIX, "202504", "202505", "202506"],
    # 202503 as first delivered, corrected after every other month
    "reverse-then-correction": ["202506", "202505", "202504", "202503", "202502", "202501", FIX],
    # shuffled, the correction in the middle, two months reloaded unchanged
    "shuffled-reloads": ["202504", "202503", "202502", "202506", FIX, "202501", "202504", "202505", "202502"],
}
_final: dict[str, dict] = {}


@pytest.mark.parametrize("name", list(ORDERS))
def test_any_order_gives_the_contract_and_the_same_tables(tmp_path, dbt, six_months, name):
    raw, corrected = six_months
    cfg, fingerprint = load_in_order(tmp_path, dbt, raw, corrected, ORDERS[name])
    with support.connect(cfg) as con:  # the correction's added cases are there, its dropped ones gone
        assert con.execute("select count(*) from mart.fact_case_summary where patient_id like 'NEW%'").fetchone() == (
            3,
        )
    # Every order ends with the same deliveries loaded: every table must hold the same rows.
    for other, other_print in _final.items():
        differs = sorted(t for t in fingerprint.keys() | other_print.keys() if fingerprint.get(t) != other_print.get(t))
        assert not differs, f"orders {name} and {other} left different tables: {differs}"
    _final[name] = fingerprint
