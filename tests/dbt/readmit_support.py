"""Helpers shared by the tests in tests/dbt: raw rows, the dbt runner, the compute_readmit runner
and the contract §3 oracle (tests/contract.py) applied to fct_cases rows.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpc_elt.core import formats, settings, sqlfiles
from tests import contract

COMPUTE_READMIT_FILES = (
    "compute_readmit/create_fact_case_summary",
    "compute_readmit/merge_fact_case_summary",
)
CASE_KEY = contract.CASE_KEY

# The columns of mart.fct_cases as dbt-duckdb builds them (name, DuckDB type). The compute_readmit
# tests create the table from this list; test_dbt_project checks it against the real model, so the
# two cannot drift apart silently.
FCT_CASES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("facility_cd", "VARCHAR"),
    ("patient_id", "VARCHAR"),
    ("admission_date", "DATE"),
    ("admission_seq_no", "BIGINT"),
    ("yyyymm", "VARCHAR"),
    ("discharge_date", "DATE"),
    ("length_of_stay_days", "INTEGER"),
    ("admission_route", "VARCHAR"),
    ("admission_type", "VARCHAR"),
    ("is_unplanned", "BOOLEAN"),
    ("readmission_type", "VARCHAR"),
    ("reported_prev_discharge_date", "DATE"),
    ("discharge_destination", "VARCHAR"),
    ("discharge_outcome", "VARCHAR"),
    ("is_death", "BOOLEAN"),
    ("sex", "VARCHAR"),
    ("age_at_admission", "INTEGER"),
    ("main_icd10", "VARCHAR"),
    ("trigger_icd10", "VARCHAR"),
    ("resource_icd10", "VARCHAR"),
    ("dpc_code", "VARCHAR"),
    ("mdc", "VARCHAR"),
    ("total_points", "BIGINT"),
    ("bundled_points", "BIGINT"),
    ("n_d_rows", "INTEGER"),
    ("n_ef_rows", "INTEGER"),
    ("n_ward_segments", "INTEGER"),
    ("n_source_months", "INTEGER"),
)

# Every column of mart.fact_case_summary, in table order.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "yyyymm",
    "facility_cd",
    "patient_id",
    "admission_date",
    "admission_seq_no",
    "discharge_date",
    "admission_type",
    "is_unplanned",
    "days_since_prev_discharge",
    "is_readmission_7d",
    "is_readmission_30d",
    "days_to_next_admission",
    "readmitted_within_7d",
    "readmitted_within_30d",
    "length_of_stay_days",
    "is_death",
    "dpc_code",
    "mdc",
    "total_points",
    "main_icd10",
)


def fct_cases_ddl() -> str:
    columns = ",\n    ".join(f"{name} {type_}" for name, type_ in FCT_CASES_COLUMNS)
    return f"create table mart.fct_cases (\n    {columns}\n)"


# --------------------------------------------------------------------------------------------
# compute_readmit
# --------------------------------------------------------------------------------------------


def run_compute_readmit(con, yyyymm: str) -> list[str]:
    """Run the compute_readmit files in order in ONE transaction, like the lead's runner; return
    the months of the final select."""
    values = sqlfiles.readmit_values(yyyymm, None)
    result = None
    con.execute("begin transaction")
    try:
        for name in COMPUTE_READMIT_FILES:
            for statement in sqlfiles.statements(name, "duckdb"):
                names = sqlfiles.bound_names(statement)
                params = {n: values[n] for n in names}
                result = con.execute(sqlfiles.to_duckdb_params(statement), params)
        assert result is not None
        months = [row[0] for row in result.fetchall()]
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return months


def fetch_dicts(con, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def summary_by_key(con) -> dict[tuple, dict[str, Any]]:
    """mart.fact_case_summary keyed by case key; fails on duplicate keys."""
    rows = fetch_dicts(con, f"select {', '.join(SUMMARY_COLUMNS)} from mart.fact_case_summary")
    keyed = {tuple(r[c] for c in CASE_KEY): r for r in rows}
    assert len(keyed) == len(rows), "duplicate case keys in fact_case_summary"
    return keyed


# --------------------------------------------------------------------------------------------
# The oracle: contract §3 in plain Python
# --------------------------------------------------------------------------------------------


# Columns fact_case_summary carries over from fct_cases unchanged.
PASSTHROUGH_COLUMNS = (
    "discharge_date",
    "admission_type",
    "length_of_stay_days",
    "is_death",
    "dpc_code",
    "mdc",
    "total_points",
    "main_icd10",
)


def oracle_summary(cases: Iterable[Mapping[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Contract §3 (tests/contract.py) over the given fct_cases rows, with the columns the summary
    carries over: one output row per case, keyed by case key."""
    cases = list(cases)
    readmission = contract.readmission(cases)
    out: dict[tuple, dict[str, Any]] = {}
    for case in cases:
        key = (case["facility_cd"], case["patient_id"], case["admission_date"], int(case["admission_seq_no"]))
        out[key] = {
            **dict(zip(CASE_KEY, key, strict=True)),
            **{column: case[column] for column in PASSTHROUGH_COLUMNS},
            **readmission[key],
        }
    return out


def latest_wins(months: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Contract §3 latest-month rule over the y1 cases of the loaded months (month -> cases)."""
    chosen: dict[tuple, dict[str, Any]] = {}
    for yyyymm in sorted(months):
        for case in months[yyyymm]:
            chosen[tuple(case[c] for c in CASE_KEY)] = {**case, "yyyymm": yyyymm}
    return list(chosen.values())


# --------------------------------------------------------------------------------------------
# Synthetic cases for mart.fct_cases
# --------------------------------------------------------------------------------------------


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def case(
    patient_id: str,
    admission: str,
    discharge: str,
    seq: int = 1,
    *,
    facility_cd: str = "131000123",
    admission_type: str | None = "100",
    is_death: bool = False,
    dpc_code: str | None = "050130xx99000x",
    total_points: int | None = 12345,
    main_icd10: str | None = "I509",
) -> dict[str, Any]:
    """One fct_cases row (without yyyymm, which comes from the month it is loaded in)."""
    admission_date, discharge_date = d(admission), d(discharge)
    return {
        "facility_cd": facility_cd,
        "patient_id": patient_id,
        "admission_date": admission_date,
        "admission_seq_no": seq,
        "discharge_date": discharge_date,
        "length_of_stay_days": (discharge_date - admission_date).days + 1,
        "admission_type": admission_type,
        "is_unplanned": admission_type is not None and (admission_type == "200" or admission_type.startswith("3")),
        "is_death": is_death,
        "dpc_code": dpc_code,
        "mdc": dpc_code[:2] if dpc_code else None,
        "total_points": total_points,
        "main_icd10": main_icd10,
    }


def write_fct_cases(con, rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace mart.fct_cases with the given rows (columns not given are NULL)."""
    names = [name for name, _ in FCT_CASES_COLUMNS]
    con.execute("delete from mart.fct_cases")
    data = [tuple(row.get(n) for n in names) for row in rows]
    if data:
        placeholders = ", ".join("?" for _ in names)
        con.executemany(f"insert into mart.fct_cases ({', '.join(names)}) values ({placeholders})", data)


# --------------------------------------------------------------------------------------------
# Raw tables and y1/EF/D lines for the dbt project tests
# --------------------------------------------------------------------------------------------


def create_raw_tables(con) -> None:
    for layout in formats.LAYOUTS.values():
        for statement in sqlfiles.statements(
            "copy_raw/create_raw_table",
            "duckdb",
            schema=settings.RAW_SCHEMA,
            table=layout.raw_table,
            columns=layout.columns,
        ):
            con.execute(statement)


@dataclass
class RawMonth:
    """The raw lines of one month, built file by file like the loader would store them."""

    yyyymm: str
    lines: dict[str, list[tuple]] = field(default_factory=lambda: {"y1": [], "ef_in": [], "d": []})

    def _add(self, layout: formats.FileLayout, facility_cd: str, values: Mapping[str, str]) -> None:
        unknown = set(values) - set(layout.columns)
        assert not unknown, unknown
        source_file = layout.file_name(facility_cd, self.yyyymm)
        line_no = 1 + sum(1 for line in self.lines[layout.file_type] if line[1] == source_file)
        row = tuple(values.get(c, "") for c in layout.columns)
        self.lines[layout.file_type].append((self.yyyymm, source_file, line_no, *row))

    def y1_case(
        self,
        facility_cd: str,
        patient_id: str,
        admission: str,
        seq: str,
        discharge: str,
        *,
        admission_type: str = "100",
        outcome: str = "1",
        icd10: str = "I509",
        birth: str = "19500101",
        prev_discharge: str = "00000000",
        segments: int = 1,
    ) -> None:
        key = {
            "facility_cd": facility_cd,
            "patient_id": patient_id,
            "admission_date": admission,
            "admission_seq_no": seq,
        }
        items = [
            ("0", "A000010", {"payload_1": birth, "payload_2": "1"}),
            ("0", "A000020", {"payload_1": admission, "payload_2": "1", "payload_5": admission_type}),
            ("0", "A000030", {"payload_1": discharge, "payload_2": "1", "payload_3": outcome}),
            ("0", "A000070", {"payload_1": prev_discharge}),
            ("0", "A006010", {"payload_2": icd10, "payload_9": "病名テキスト"}),
            ("0", "A006030", {"payload_2": icd10}),
        ]
        items += [
            (
                str(n),
                "A001010",
                {"payload_1": f"W{n}", "payload_2": admission, "payload_3": discharge, "payload_4": "1"},
            )
            for n in range(1, segments + 1)
        ]
        for summary_no, item_code, payload in items:
            values = {
                **key,
                "summary_no": summary_no,
                "item_code": item_code,
                "item_version": "1",
                "item_seq": "1",
                **payload,
            }
            self._add(formats.Y1, facility_cd, values)

    def d_line(
        self,
        facility_cd: str,
        patient_id: str,
        admission: str,
        discharge: str,
        *,
        points: str,
        count: str = "1",
        bundled: bool = True,
        dpc_code: str = "050130xx99000x",
    ) -> None:
        self._add(
            formats.D,
            facility_cd,
            {
                "facility_cd": facility_cd,
                "patient_id": patient_id,
                "discharge_date": discharge,
                "admission_date": admission,
                "data_category": "93" if bundled else "60",
                "order_no": "0001",
                "item_name": "名称",
                "act_points": points,
                "act_count": count,
                "calc_start_date": admission,
                "dpc_code": dpc_code if bundled else "",
                "hospital_coefficient": "1.2345",
            },
        )

    def ef_line(self, facility_cd: str, patient_id: str, admission: str, discharge: str, detail_no: str) -> None:
        self._add(
            formats.EF_IN,
            facility_cd,
            {
                "facility_cd": facility_cd,
                "patient_id": patient_id,
                "discharge_date": discharge,
                "admission_date": admission,
                "data_category": "60",
                "order_no": "0001",
                "detail_no": detail_no,
                "item_name": "名称",
                "quantity": "0000001.000",
                "act_points": "00120",
                "act_count": "1",
                "ffs_points": "-12",
                "performed_date": admission,
            },
        )

    def write(self, con) -> None:
        """Replace this month in the raw tables (what the loader does for a month)."""
        for layout in formats.LAYOUTS.values():
            con.execute(f"delete from raw.{layout.raw_table} where yyyymm = ?", [self.yyyymm])
            rows = self.lines[layout.file_type]
            if rows:
                placeholders = ", ".join("?" for _ in rows[0])
                con.executemany(f"insert into raw.{layout.raw_table} values ({placeholders})", rows)


# --------------------------------------------------------------------------------------------
# dbt
# --------------------------------------------------------------------------------------------


@dataclass
class DbtProject:
    """Runs dbt in-process (dbtRunner) against one DuckDB file, with target/ and logs/ kept out of
    the project folder."""

    duckdb_path: Path
    work_dir: Path

    def invoke(self, *args: str, target: str = "duckdb", env: Mapping[str, str | None] | None = None):
        from dbt.cli.main import dbtRunner

        overrides: dict[str, str | None] = {
            "DPC_DUCKDB_PATH": str(self.duckdb_path),
            "DPC_YYYYMM": None,  # all months unless the test names one
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
            **(env or {}),
        }
        saved = {k: os.environ.get(k) for k in overrides}
        try:
            for key, value in overrides.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            return dbtRunner().invoke(
                [
                    *args,
                    "--project-dir",
                    str(settings.DBT_PROJECT_DIR),
                    "--profiles-dir",
                    str(settings.DBT_PROJECT_DIR),
                    "--target",
                    target,
                    "--target-path",
                    str(self.work_dir / f"target-{target}"),
                    "--log-path",
                    str(self.work_dir / "logs"),
                    "--quiet",
                ]
            )
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def result_statuses(result) -> dict[str, str]:
    """Node name -> status (pass, fail, warn, error, success, ...) of a dbtRunner result."""
    return {r.node.name: str(r.status) for r in (result.result or [])}
