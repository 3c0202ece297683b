"""include/sql/compute_readmit against contract §3, on DuckDB.

mart.fct_cases is created from readmit_support.FCT_CASES_COLUMNS (test_dbt_project checks that list
against the real dbt model) and filled with hand-made cases per loaded month, applying the
latest-month rule; the files then run exactly as the lead's runner runs them (one transaction,
`:name` -> `$name`, only the bound names passed). After every run the whole table is compared,
column by column, with an independent Python computation of §3, and the returned months with the
months whose rows really were deleted or inserted.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re

import duckdb
import pytest
from readmit_support import (
    CASE_KEY,
    COMPUTE_READMIT_FILES,
    SUMMARY_COLUMNS,
    case,
    d,
    fct_cases_ddl,
    latest_wins,
    oracle_summary,
    run_compute_readmit,
    summary_by_key,
    write_fct_cases,
)

from dpc_elt.core import sqlfiles


class Warehouse:
    """A DuckDB file with mart.fct_cases; `load` plays one month through the pipeline."""

    def __init__(self, path):
        self.con = duckdb.connect(str(path))
        self.con.execute("create schema if not exists mart")
        self.con.execute(fct_cases_ddl())
        self.months: dict[str, list[dict]] = {}

    def fct_rows(self) -> list[dict]:
        return latest_wins(self.months)

    def load(self, yyyymm: str, cases: list[dict], *, merge: bool = True) -> list[str] | None:
        """Replace month `yyyymm` (as the loader + dbt would), then run compute_readmit for it."""
        self.months[yyyymm] = cases
        write_fct_cases(self.con, self.fct_rows())
        return self.merge(yyyymm) if merge else None

    def merge(self, yyyymm: str) -> list[str]:
        before = self.summary_rows()
        months = run_compute_readmit(self.con, yyyymm)
        self.check(yyyymm, before, months)
        return months

    def summary_rows(self) -> list[dict]:
        if not self.con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'mart' and table_name = 'fact_case_summary'"
        ).fetchone()[0]:
            return []
        cursor = self.con.execute(f"select {', '.join(SUMMARY_COLUMNS)} from mart.fact_case_summary")
        return [dict(zip(SUMMARY_COLUMNS, row, strict=True)) for row in cursor.fetchall()]

    def check(self, yyyymm: str, before: list[dict], months: list[str]) -> None:
        expected = oracle_summary(self.fct_rows())
        actual = summary_by_key(self.con)
        assert actual.keys() == expected.keys()
        for key, row in expected.items():
            for column in SUMMARY_COLUMNS:
                got, want = actual[key][column], row[column]
                assert got == want and type(got) is type(want), (key, column, got, want)
        # The months returned: those of every row deleted or inserted. A patient is rewritten when it
        # has a case in the month (before or after) or when any of its rows differed from §3.
        fct = self.fct_rows()
        stale = {
            (r["facility_cd"], r["patient_id"])
            for r in before
            if tuple(r[c] for c in CASE_KEY) not in expected or expected[tuple(r[c] for c in CASE_KEY)] != r
        }
        stale |= {k[:2] for k in expected if k not in {tuple(r[c] for c in CASE_KEY) for r in before}}
        seen = {}
        for r in before:
            seen.setdefault(tuple(r[c] for c in CASE_KEY), 0)
            seen[tuple(r[c] for c in CASE_KEY)] += 1
        stale |= {k[:2] for k, n in seen.items() if n > 1}
        touched = {(c["facility_cd"], c["patient_id"]) for c in fct if c["yyyymm"] == yyyymm}
        touched |= {(r["facility_cd"], r["patient_id"]) for r in before if r["yyyymm"] == yyyymm}
        affected = touched | stale
        want_months = {r["yyyymm"] for r in before if (r["facility_cd"], r["patient_id"]) in affected}
        want_months |= {r["yyyymm"] for r in expected.values() if (r["facility_cd"], r["patient_id"]) in affected}
        assert months == sorted(want_months)


@pytest.fixture
def wh(tmp_path):
    warehouse = Warehouse(tmp_path / "readmit.duckdb")
    yield warehouse
    warehouse.con.close()


def row(wh: Warehouse, patient_id: str, admission: str, seq: int = 1, facility_cd: str = "131000123") -> dict:
    return summary_by_key(wh.con)[(facility_cd, patient_id, d(admission), seq)]


# ------------------------------------------------------------------------------------------------
# The files themselves
# ------------------------------------------------------------------------------------------------


def test_files_are_portable_and_documented():
    merge_statements = sqlfiles.statements(COMPUTE_READMIT_FILES[1], "duckdb")
    for name in COMPUTE_READMIT_FILES:
        for dialect in sqlfiles.DIALECTS:
            # No dialect copies: the same file serves DuckDB and Redshift.
            assert sqlfiles.sql_path(name, dialect) == sqlfiles.sql_path(name, "duckdb")
        text = sqlfiles.sql_path(name, "duckdb").read_text(encoding="utf-8")
        header = list(itertools.takewhile(lambda line: line.startswith("--"), text.splitlines()))
        assert 3 <= len(header) <= 5, name
        assert "{{" not in text and "{%" not in text, "no Jinja: the runner renders no identifiers here"
        for line in text.splitlines():
            if "--" in line:
                assert ";" not in line.split("--", 1)[1], f"semicolon in a comment: {line}"
        for statement in sqlfiles.statements(name, "duckdb"):
            assert sqlfiles.bound_names(statement) <= {"yyyymm", "facility_cd"}
            assert "'" not in statement or not re.search(r"'[^']*;", statement)
    assert [s.split()[0] for s in merge_statements] == [
        "drop",
        "create",
        "drop",
        "create",
        "drop",
        "create",
        "delete",
        "insert",
        "select",
    ]
    assert merge_statements[-1] == "select distinct yyyymm from dpc_readmit_months order by 1"


def test_create_is_idempotent_and_keeps_rows(wh):
    wh.load("202501", [case("P1", "2025-01-05", "2025-01-10")])
    for statement in sqlfiles.statements(COMPUTE_READMIT_FILES[0], "duckdb"):
        wh.con.execute(statement)
    assert len(summary_by_key(wh.con)) == 1


# ------------------------------------------------------------------------------------------------
# Contract §3 edge cases
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gap", "is_7d", "is_30d"),
    [(-1, False, False), (0, True, True), (7, True, True), (8, False, True), (30, False, True), (31, False, False)],
)
def test_gap_boundaries(wh, gap, is_7d, is_30d):
    readmission = d("2025-01-10") + dt.timedelta(days=gap)
    wh.load(
        "202501",
        [
            case("P1", "2025-01-01", "2025-01-10"),
            case("P1", readmission.isoformat(), (readmission + dt.timedelta(days=2)).isoformat(), seq=2),
        ],
    )
    first, second = row(wh, "P1", "2025-01-01"), row(wh, "P1", readmission.isoformat(), seq=2)
    assert second["days_since_prev_discharge"] == gap == first["days_to_next_admission"]
    assert (second["is_readmission_7d"], second["is_readmission_30d"]) == (is_7d, is_30d)
    assert (first["readmitted_within_7d"], first["readmitted_within_30d"]) == (is_7d, is_30d)
    # Without a prev / next, flags are false and never NULL.
    assert first["days_since_prev_discharge"] is None and first["is_readmission_30d"] is False
    assert second["days_to_next_admission"] is None and second["readmitted_within_30d"] is False


def test_month_and_year_boundary(wh):
    wh.load("202412", [case("P1", "2024-12-20", "2024-12-28", admission_type="301")])
    wh.load("202501", [case("P1", "2025-01-04", "2025-01-09", admission_type="200")])
    dec, jan = row(wh, "P1", "2024-12-20"), row(wh, "P1", "2025-01-04")
    assert (dec["yyyymm"], jan["yyyymm"]) == ("202412", "202501")
    assert dec["days_to_next_admission"] == jan["days_since_prev_discharge"] == 7
    assert dec["readmitted_within_7d"] and jan["is_readmission_7d"]
    assert dec["is_unplanned"] and jan["is_unplanned"]


def test_two_stays_on_one_admission_date_order_by_number(wh):
    wh.load(
        "202501",
        [
            case("P1", "2025-01-05", "2025-01-05", seq=1),
            case("P1", "2025-01-05", "2025-01-12", seq=2),
            # seq 9 and 10 on one day: as text "10" < "9" would put the stays the wrong way round.
            case("P2", "2025-01-05", "2025-01-05", seq=9),
            case("P2", "2025-01-05", "2025-01-20", seq=10),
        ],
    )
    assert row(wh, "P1", "2025-01-05", 2)["days_since_prev_discharge"] == 0
    assert row(wh, "P1", "2025-01-05", 1)["days_to_next_admission"] == 0
    nine, ten = row(wh, "P2", "2025-01-05", 9), row(wh, "P2", "2025-01-05", 10)
    assert nine["days_since_prev_discharge"] is None and nine["days_to_next_admission"] == 0
    assert ten["days_since_prev_discharge"] == 0 and ten["days_to_next_admission"] is None


def test_patient_id_at_two_facilities_is_never_linked(wh):
    wh.load(
        "202501",
        [
            case("P1", "2025-01-01", "2025-01-05", facility_cd="131000123"),
            case("P1", "2025-01-06", "2025-01-09", facility_cd="271000456"),
        ],
    )
    for facility_cd, admission in (("131000123", "2025-01-01"), ("271000456", "2025-01-06")):
        r = row(wh, "P1", admission, facility_cd=facility_cd)
        assert r["days_since_prev_discharge"] is None and r["days_to_next_admission"] is None
        assert not (r["is_readmission_30d"] or r["readmitted_within_30d"])


def test_facts_are_copied_from_fct_cases(wh):
    wh.load(
        "202501",
        [case("P1", "2025-01-01", "2025-01-05", is_death=True, dpc_code=None, total_points=None, main_icd10=None)],
    )
    r = row(wh, "P1", "2025-01-01")
    assert r["is_death"] is True and r["length_of_stay_days"] == 5
    assert r["dpc_code"] is None and r["mdc"] is None and r["total_points"] is None


# ------------------------------------------------------------------------------------------------
# Load order, reloads, self-healing, idempotence
# ------------------------------------------------------------------------------------------------


def four_months() -> dict[str, list[dict]]:
    """Months with cases that link across months and one key carried by two months' files."""
    return {
        "202411": [case("P1", "2024-11-01", "2024-11-10"), case("P3", "2024-11-20", "2024-11-25")],
        "202412": [
            case("P1", "2024-12-01", "2024-12-05", admission_type="200"),
            case("P2", "2024-12-10", "2024-12-31"),
            # also in 202501's file, with another discharge date: the 202501 row must count
            case("P3", "2024-12-20", "2024-12-29"),
        ],
        "202501": [
            case("P1", "2025-01-05", "2025-01-05", seq=9),
            case("P1", "2025-01-05", "2025-01-15", seq=10),
            case("P3", "2024-12-20", "2024-12-30", admission_type="301"),
            case("P2", "2025-01-31", "2025-02-02", facility_cd="271000456"),
        ],
        "202502": [case("P2", "2025-02-01", "2025-02-03"), case("P3", "2025-02-28", "2025-02-28")],
    }


def test_load_order_does_not_matter(tmp_path):
    months = four_months()
    orders = list(itertools.permutations(sorted(months)))
    random.Random(20250101).shuffle(orders)
    tables = []
    for i, order in enumerate(orders[:8]):
        wh = Warehouse(tmp_path / f"order{i}.duckdb")
        for yyyymm in order:
            wh.load(yyyymm, months[yyyymm])  # checked against §3 after every single month
        tables.append(summary_by_key(wh.con))
        wh.con.close()
    assert all(t == tables[0] for t in tables)
    p3 = tables[0][("131000123", "P3", d("2024-12-20"), 1)]
    assert (p3["yyyymm"], p3["discharge_date"], p3["admission_type"]) == ("202501", d("2024-12-30"), "301")


def test_reloaded_month_drops_one_case_and_adds_another(wh):
    months = four_months()
    for yyyymm in sorted(months):
        wh.load(yyyymm, months[yyyymm])
    reloaded = [c for c in months["202412"] if c["patient_id"] != "P2"]  # P2's Dec stay is gone
    reloaded.append(case("P4", "2024-12-02", "2024-12-03"))
    returned = wh.load("202412", reloaded)
    keys = summary_by_key(wh.con)
    assert ("131000123", "P2", d("2024-12-10"), 1) not in keys
    assert ("131000123", "P4", d("2024-12-02"), 1) in keys
    assert keys[("131000123", "P2", d("2025-02-01"), 1)]["days_since_prev_discharge"] is None
    assert returned == ["202411", "202412", "202501", "202502"]


def test_month_emptied_by_reload(wh):
    wh.load("202501", [case("P1", "2025-01-01", "2025-01-05")])
    wh.load("202502", [case("P1", "2025-02-01", "2025-02-05")])
    assert wh.load("202501", []) == ["202501", "202502"]
    assert list(summary_by_key(wh.con)) == [("131000123", "P1", d("2025-02-01"), 1)]


def test_self_healing_after_a_skipped_month(wh):
    months = four_months()
    wh.load("202411", months["202411"])
    wh.load("202412", months["202412"], merge=False)  # compute_readmit for 202412 never ran
    returned = wh.load("202501", months["202501"])  # the check inside proves the table equals §3
    assert "202412" in returned


@pytest.mark.parametrize(
    "damage",
    [
        "delete from mart.fact_case_summary where patient_id = 'P2' and yyyymm = '202412'",
        "update mart.fact_case_summary set is_readmission_30d = not is_readmission_30d where patient_id = 'P2'",
        "update mart.fact_case_summary set yyyymm = '209912' where patient_id = 'P2'",
        "insert into mart.fact_case_summary select * from mart.fact_case_summary where patient_id = 'P2'",
        "insert into mart.fact_case_summary select * replace ('P9' as patient_id) "
        "from mart.fact_case_summary where patient_id = 'P2'",
        "update mart.fact_case_summary set total_points = 1 where patient_id = 'P2'",
    ],
)
def test_self_healing_after_damage(wh, damage):
    months = four_months()
    for yyyymm in sorted(months):
        wh.load(yyyymm, months[yyyymm])
    wh.con.execute(damage)
    # 202411 holds cases of P1 and P3 only: P2's rows are repaired by the self-healing alone.
    assert "P2" not in {c["patient_id"] for c in months["202411"]}
    wh.merge("202411")


def test_idempotent(wh):
    months = four_months()
    for yyyymm in sorted(months):
        wh.load(yyyymm, months[yyyymm])
    first = summary_by_key(wh.con)
    returned = wh.merge("202502")
    assert summary_by_key(wh.con) == first
    # P2 and P3 have cases in 202502; their rows are rewritten, so their months are returned.
    assert returned == ["202411", "202412", "202501", "202502"]
    assert wh.merge("202503") == []  # a month without cases touches nothing when all is in order


def test_returned_months_are_only_those_rewritten(wh):
    wh.load("202410", [case("P8", "2024-10-01", "2024-10-03")])
    wh.load("202411", [case("P1", "2024-11-01", "2024-11-10")])
    assert wh.load("202412", [case("P1", "2024-12-01", "2024-12-05")]) == ["202411", "202412"]
