"""The dbt project on DuckDB, end to end: raw rows for three months -> seed, full run, an
incremental run of one changed month, compute_readmit, dbt test; then broken data must make
`dbt test` fail, a bad month var must be refused, and the Redshift target must parse offline.

dbt runs in-process (dbtRunner); the tests of this module share one warehouse and run in order.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from readmit_support import (
    CASE_KEY,
    FCT_CASES_COLUMNS,
    SUMMARY_COLUMNS,
    DbtProject,
    RawMonth,
    create_raw_tables,
    fetch_dicts,
    oracle_summary,
    result_statuses,
    run_compute_readmit,
    summary_by_key,
)

F1, F2 = "131000123", "271000456"
P1, P2, P3, P4, P5, P6 = (f"000000000{i}" for i in range(1, 7))
STAGE_KEYS = {
    "stg_dpc__y1_cases": ("yyyymm", *CASE_KEY),
    "stg_dpc__y1_segments": ("yyyymm", *CASE_KEY, "summary_no"),
    "stg_dpc__ef_in_stays": ("yyyymm", "facility_cd", "patient_id", "admission_date", "discharge_key"),
    "stg_dpc__d": ("yyyymm", "source_file", "line_no"),
}
STAGE_TABLES = tuple(STAGE_KEYS)


def month_202412() -> RawMonth:
    m = RawMonth("202412")
    m.y1_case(F1, P1, "20241201", "1", "20241210", segments=2)
    m.y1_case(F1, P2, "20241220", "1", "20241231", outcome="6", admission_type="301", birth="00000000")
    m.y1_case(F1, P5, "20241215", "1", "20241228")  # the same key again in 202501
    m.d_line(F1, P1, "20241201", "20241210", points="2000", count="5")
    m.d_line(F1, P1, "20241201", "20241210", points="300", count="2", bundled=False)
    m.ef_line(F1, P1, "20241201", "20241210", "000")
    m.ef_line(F1, P1, "20241201", "20241210", "001")
    # P6 is still in hospital at the end of December: billing with the discharge sentinel.
    m.d_line(F1, P6, "20241225", "00000000", points="1000", count="7", dpc_code="040080xx99x0xx")
    return m


def month_202501(reloaded: bool = False) -> RawMonth:
    m = RawMonth("202501")
    m.y1_case(F1, P1, "20250105", "1", "20250108", admission_type="200")
    m.y1_case(F1, P5, "20241215", "1", "20241229", icd10="J189")
    m.y1_case(F2, P1, "20250109", "1", "20250110")  # same patient_id, other facility
    m.y1_case(F1, P6, "20241225", "1", "20250110")
    if not reloaded:
        m.y1_case(F1, P3, "20250120", "1", "20250125")
        m.d_line(F1, P6, "20241225", "20250110", points="1000", count="10", dpc_code="040081xx99x0xx")
    else:
        # The corrected month: P3's stay is gone, P4's is new, and no D file at all.
        m.y1_case(F1, P4, "20250115", "1", "20250118")
    return m


def month_202502() -> RawMonth:
    m = RawMonth("202502")
    m.y1_case(F1, P1, "20250210", "9", "20250210")
    m.y1_case(F1, P1, "20250210", "10", "20250215", admission_type="200")
    m.d_line(F1, P1, "20250210", "20250210", points="500")
    m.d_line(F1, P1, "20250210", "20250215", points="800", count="3")
    return m


def stage_rows(con, table: str, yyyymm: str) -> list[tuple]:
    return sorted(con.execute(f"select * from stage.{table} where yyyymm = ?", [yyyymm]).fetchall(), key=repr)


def ok(result) -> None:
    assert result.success, (result.exception, result_statuses(result))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    work = tmp_path_factory.mktemp("dbt")
    project = DbtProject(duckdb_path=work / "warehouse.duckdb", work_dir=work)
    with duckdb.connect(str(project.duckdb_path)) as con:
        create_raw_tables(con)
        for month in (month_202412(), month_202501(), month_202502()):
            month.write(con)

    ok(project.invoke("seed"))
    ok(project.invoke("run"))  # full build: every month
    with duckdb.connect(str(project.duckdb_path)) as con:
        first = {
            "cases": {
                (r["yyyymm"], r["patient_id"]) for r in fetch_dicts(con, "select * from stage.stg_dpc__y1_cases")
            },
            "fct": fetch_dicts(con, "select * from mart.fct_cases"),
            "stage": {(t, m): stage_rows(con, t, m) for t in STAGE_TABLES for m in ("202412", "202501", "202502")},
        }
        month_202501(reloaded=True).write(con)

    # Incremental: only 202501 (padded with blanks, as a hand-typed environment variable might be).
    ok(project.invoke("run", env={"DPC_YYYYMM": " 202501 "}))
    with duckdb.connect(str(project.duckdb_path)) as con:
        returned = run_compute_readmit(con, "202501")
    return project, first, returned


@pytest.fixture
def con(warehouse):
    project = warehouse[0]
    with duckdb.connect(str(project.duckdb_path)) as connection:
        yield connection


def test_full_run_builds_every_month(warehouse):
    _, first, _ = warehouse
    assert {m for m, _ in first["cases"]} == {"202412", "202501", "202502"}
    assert ("202501", P3) in first["cases"]
    p6 = next(r for r in first["fct"] if r["patient_id"] == P6)
    # Open (sentinel) December billing + closed January billing: one stay, latest DPC code.
    assert (p6["total_points"], p6["dpc_code"], p6["mdc"], p6["n_d_rows"]) == (17000, "040081xx99x0xx", "04", 2)


def test_incremental_run_replaces_only_its_month(warehouse, con):
    _, first, _ = warehouse
    for table in STAGE_TABLES:
        for yyyymm in ("202412", "202502"):
            assert stage_rows(con, table, yyyymm) == first["stage"][(table, yyyymm)], (table, yyyymm)
    patients = [
        r[0]
        for r in con.execute(
            "select patient_id from stage.stg_dpc__y1_cases where yyyymm = '202501' order by 1"
        ).fetchall()
    ]
    assert patients == sorted([P1, P5, P1, P6, P4])  # P3 dropped, P4 added, nothing twice
    # A month whose D file disappeared ends up empty in stage, not left over.
    assert con.execute("select count(*) from stage.stg_dpc__d where yyyymm = '202501'").fetchone() == (0,)
    for table, key in STAGE_KEYS.items():
        n_rows, n_keys = con.execute(
            f"select count(*), count(distinct ({', '.join(key)})) from stage.{table}"
        ).fetchone()
        assert n_rows == n_keys, table


def test_pivot_gives_one_row_per_case_with_typed_values(con):
    rows = fetch_dicts(con, "select * from stage.stg_dpc__y1_cases where yyyymm = '202412' order by patient_id")
    assert [r["patient_id"] for r in rows] == [P1, P2, P5]
    p1, p2, _ = rows
    assert p1["admission_date"] == dt.date(2024, 12, 1) and p1["discharge_date"] == dt.date(2024, 12, 10)
    assert p1["admission_seq_no"] == 1 and p1["n_ward_segments"] == 2 and p1["main_icd10"] == "I509"
    assert p1["prev_discharge_date"] is None  # 00000000
    assert p2["birth_date"] is None and p2["is_death"] is True and p2["admission_type"] == "301"
    seqs = con.execute(
        "select admission_seq_no from stage.stg_dpc__y1_cases where yyyymm = '202502' order by admission_seq_no"
    ).fetchall()
    assert seqs == [(9,), (10,)]
    segments = con.execute("select count(*) from stage.stg_dpc__y1_segments where yyyymm = '202412'").fetchone()
    assert segments == (4,)  # P1 two, P2 one, P5 one


def test_latest_month_wins_in_fct_cases(con):
    cases = {tuple(r[c] for c in CASE_KEY): r for r in fetch_dicts(con, "select * from mart.fct_cases")}
    p5 = cases[(F1, P5, dt.date(2024, 12, 15), 1)]
    assert (p5["yyyymm"], p5["discharge_date"], p5["main_icd10"], p5["n_source_months"]) == (
        "202501",
        dt.date(2024, 12, 29),
        "J189",
        2,
    )
    assert not any(k[1] == P3 for k in cases) and (F1, P4, dt.date(2025, 1, 15), 1) in cases
    # With the January D file gone, P6 keeps only its open December billing.
    p6 = cases[(F1, P6, dt.date(2024, 12, 25), 1)]
    assert (p6["total_points"], p6["dpc_code"]) == (7000, "040080xx99x0xx")
    nine, ten = cases[(F1, P1, dt.date(2025, 2, 10), 9)], cases[(F1, P1, dt.date(2025, 2, 10), 10)]
    assert (nine["total_points"], ten["total_points"]) == (500, 2400)
    assert (nine["length_of_stay_days"], ten["length_of_stay_days"]) == (1, 6)
    assert ten["is_unplanned"] and not nine["is_unplanned"]


def test_fct_cases_columns_match_the_readmit_tests(con):
    described = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'mart' and table_name = 'fct_cases' order by ordinal_position"
    ).fetchall()
    assert tuple(described) == FCT_CASES_COLUMNS


def test_fact_case_summary_equals_the_contract(warehouse, con):
    _, _, returned = warehouse
    assert returned == ["202412", "202501", "202502"]  # the first run fills every month
    expected = oracle_summary(fetch_dicts(con, "select * from mart.fct_cases"))
    actual = summary_by_key(con)
    assert actual == {k: {c: v[c] for c in SUMMARY_COLUMNS} for k, v in expected.items()}
    jan = actual[(F1, P1, dt.date(2025, 1, 5), 1)]
    assert (jan["days_since_prev_discharge"], jan["is_readmission_7d"], jan["is_readmission_30d"]) == (26, False, True)
    assert actual[(F2, P1, dt.date(2025, 1, 9), 1)]["days_since_prev_discharge"] is None


def test_dbt_test_passes_and_warns_about_keys_in_two_months(warehouse):
    project = warehouse[0]
    result = project.invoke("test")
    ok(result)
    statuses = result_statuses(result)
    assert statuses["warn_case_keys_in_several_months"] == "warn"
    assert statuses["assert_fact_case_summary_equals_contract"] == "pass"
    assert sum(1 for name in statuses if name.startswith("test_")) >= 6  # unit tests ran too


def test_dbt_test_fails_on_broken_data(warehouse):
    project = warehouse[0]
    with duckdb.connect(str(project.duckdb_path)) as con:
        con.execute(
            f"insert into mart.fact_case_summary select * from mart.fact_case_summary where patient_id = '{P2}'"
        )
        con.execute(
            "update mart.fact_case_summary set readmitted_within_30d = not readmitted_within_30d "
            f"where patient_id = '{P4}'"
        )
        con.execute("update stage.stg_dpc__ef_in_stays set n_ef_rows = n_ef_rows - 1 where yyyymm = '202412'")
    result = project.invoke("test", "--select", "tag:summary", "assert_stage_months_match_raw")
    assert not result.success
    failed = {name for name, status in result_statuses(result).items() if status == "fail"}
    assert {
        "assert_fact_case_summary_covers_fct_cases",
        "assert_fact_case_summary_equals_contract",
        "assert_fact_case_summary_flags_match_days",
        "assert_stage_months_match_raw",
    } <= failed
    assert any(name.startswith("source_unique_combination_of_columns_dpc_mart") for name in failed)

    # The merge heals the summary whatever the month; a full refresh rebuilds stage with all months
    # even with DPC_YYYYMM set.
    with duckdb.connect(str(project.duckdb_path)) as con:
        run_compute_readmit(con, "202502")
    ok(project.invoke("run", "--full-refresh", "--select", "path:models/staging", env={"DPC_YYYYMM": "202502"}))
    with duckdb.connect(str(project.duckdb_path)) as con:
        months = con.execute("select distinct yyyymm from stage.stg_dpc__ef_in_stays order by 1").fetchall()
        assert months == [("202412",)]
        assert con.execute("select count(distinct yyyymm) from stage.stg_dpc__y1_cases").fetchone() == (3,)
    ok(project.invoke("test", "--select", "tag:summary", "assert_stage_months_match_raw"))


def test_a_null_in_an_intermediate_view_fails_its_one_not_null_test(warehouse):
    project = warehouse[0]
    nulled = {"stg_dpc__y1_cases": ("admission_seq_no", P2), "stg_dpc__d": ("patient_id", P6)}
    with duckdb.connect(str(project.duckdb_path)) as con:
        for table, (column, patient) in nulled.items():
            con.execute(f"create table main.saved_{table} as select * from stage.{table}")
            con.execute(f"update stage.{table} set {column} = null where patient_id = '{patient}'")
    try:
        result = project.invoke("test", "--select", "int_cases__latest", "int_billing__per_stay")
    finally:
        with duckdb.connect(str(project.duckdb_path)) as con:
            for table in nulled:
                con.execute(f"delete from stage.{table}")
                con.execute(f"insert into stage.{table} select * from main.saved_{table}")
                con.execute(f"drop table main.saved_{table}")
    failed = {name for name, status in result_statuses(result).items() if status == "fail"}
    assert {name for name in failed if name.startswith("not_null_columns_")} == {
        "not_null_columns_int_cases__latest_facility_cd__patient_id__admission_date__admission_seq_no__yyyymm__n_source_months",
        "not_null_columns_int_billing__per_stay_facility_cd__patient_id__discharge_key__d_total_points__d_bundled_points__n_d_rows__n_ef_rows__n_ef_acts",
    }


def test_a_repeated_raw_key_fails_its_uniqueness_test_in_its_month_only(warehouse):
    """With DPC_YYYYMM the raw tables' key test reads only that month: it reports exactly that month's
    repeated keys, as a plain grouping counts them (without it, every month's)."""
    project = warehouse[0]
    test_name = "source_unique_combination_of_columns_dpc_raw_y1_yyyymm__source_file__line_no__True"
    with duckdb.connect(str(project.duckdb_path)) as con:
        con.execute("create table main.saved_y1 as select * from raw.y1")
        # 202501: two lines loaded twice; 202412: one line loaded three times.
        con.execute("insert into raw.y1 select * from raw.y1 where yyyymm = '202501' limit 2")
        con.execute("insert into raw.y1 select * from raw.y1 where yyyymm = '202412' limit 1")
        con.execute("insert into raw.y1 select * from raw.y1 where yyyymm = '202412' limit 1")
        plain = {
            month: con.execute(
                "select count(*) from (select yyyymm, source_file, line_no from raw.y1 "
                f"where {month} group by all having count(*) > 1)"
            ).fetchone()[0]
            for month in ("yyyymm = '202501'", "yyyymm = '202412'", "yyyymm = '202502'", "true")
        }
    assert plain == {"yyyymm = '202501'": 2, "yyyymm = '202412'": 1, "yyyymm = '202502'": 0, "true": 3}
    try:
        failures = {}
        for month in ("202501", "202412", "202502", None):
            result = project.invoke("test", "--select", test_name, env={"DPC_YYYYMM": month})
            (node,) = result.result
            failures[month] = (str(node.status), node.failures)
    finally:
        with duckdb.connect(str(project.duckdb_path)) as con:
            con.execute("delete from raw.y1")
            con.execute("insert into raw.y1 select * from main.saved_y1")
            con.execute("drop table main.saved_y1")
    assert failures == {"202501": ("fail", 2), "202412": ("fail", 1), "202502": ("pass", 0), None: ("fail", 3)}


@pytest.mark.parametrize("scope", ["", "where c <> 'skipped'"])
def test_duckdb_repeated_keys_equal_the_plain_grouping(warehouse, scope):
    """DuckDB's body of the uniqueness test (a hash of the key first) returns what the plain grouping
    of every other adapter returns: NULLs group together, the scope applies, counts are exact."""
    project = warehouse[0]
    rows = (
        "(select * from (values (1, null, 'a'), (1, null, 'b'), (1, 2, 'c'), (2, 3, 'd'), (2, 3, 'e'), "
        "(2, 3, 'f'), (4, 5, 'skipped'), (4, 5, 'g'), (null, null, 'h'), (null, null, 'i')) as t(a, b, c))"
    )
    found = {}
    for body in ("dpc_repeated_keys", "default__dpc_repeated_keys"):  # dispatched: duckdb__ here
        sql = f"{{{{ {body}(\"{rows}\", ['a', 'b'], \"{scope}\") }}}} order by a, b"
        result = project.invoke("show", "--inline", sql, "--limit", "-1")
        ok(result)
        found[body] = [tuple(row) for row in result.result.results[0].agate_table.rows]
    expected = [(1, None, 2), (2, 3, 3), (None, None, 2)] + ([] if scope else [(4, 5, 2)])
    assert found["dpc_repeated_keys"] == found["default__dpc_repeated_keys"]
    assert sorted(found["dpc_repeated_keys"], key=repr) == sorted(expected, key=repr)


@pytest.mark.parametrize("bad", ["202513", "2025-1", "210001", "189912"])  # as params.YYYYMM_PATTERN
def test_bad_month_is_refused(warehouse, bad):
    result = warehouse[0].invoke("compile", "--select", "stg_dpc__y1_cases", env={"DPC_YYYYMM": bad})
    assert not result.success
    assert "DPC_YYYYMM must be a real month" in str(result.exception)


def test_redshift_target_parses_and_compiles_to_redshift_sql(warehouse, monkeypatch):
    """`dbt parse --target redshift` works offline. Then every model and singular test is compiled
    for Redshift (no connection: relations are reported as existing tables, so the incremental month
    filter is compiled too) and the SQL is parsed with sqlfluff's Redshift dialect."""
    from dbt.adapters.base.impl import BaseAdapter
    from sqlfluff.core import Linter

    def existing_table(self, database, schema, identifier):
        return self.Relation.create(database=database, schema=schema, identifier=identifier, type="table")

    project = warehouse[0]
    env = {"DPC_DUCKDB_PATH": None, "DPC_YYYYMM": "202501"}  # dbt parse needs no connection and no path
    ok(project.invoke("parse", target="redshift", env=env))

    monkeypatch.setattr(BaseAdapter, "get_relation", existing_table)
    result = project.invoke(
        "--no-populate-cache",
        "compile",
        "--no-introspect",
        "--select",
        "resource_type:model",
        "test_type:singular",
        "test_name:unique_combination_of_columns",
        target="redshift",
        env=env,
    )
    ok(result)
    compiled = {r.node.name: r.node.compiled_code for r in result.result}
    assert len(compiled) >= 16
    assert "where yyyymm = '202501'" in compiled["stg_dpc__y1_cases"]
    assert "to_date(" in compiled["stg_dpc__y1_cases"] and '"raw"."y1"' in compiled["stg_dpc__y1_cases"]
    # The uniqueness tests group on the key itself on Redshift (DuckDB's hash() is not Redshift SQL).
    uniqueness = {n: sql for n, sql in compiled.items() if n.startswith(("unique_combination", "source_unique"))}
    assert len(uniqueness) >= 10 and not [n for n, sql in uniqueness.items() if "hash(" in sql]
    ef_in_key = "source_unique_combination_of_columns_dpc_raw_ef_in_yyyymm__source_file__line_no__True"
    assert "where yyyymm = '202501'" in uniqueness[ef_in_key]
    linter = Linter(dialect="redshift")
    # sqlfluff takes about half a second a file: the models, the singular tests with the most syntax and
    # one uniqueness test (they all render the same SQL).
    checked = [n for n in compiled if not n.startswith("assert_fact_case_summary_") and n not in uniqueness]
    checked += ["assert_fact_case_summary_equals_contract", "assert_fact_case_summary_covers_fct_cases", ef_in_key]
    for name in checked:
        sql = compiled[name]
        problems = [v.desc() for v in linter.parse_string(sql.rstrip() + "\n").violations]
        assert not problems, (name, problems[:2])
