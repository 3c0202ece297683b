"""Contract §3 (readmission) in plain Python: the one oracle the tests compare the pipeline with.

Written from the contract alone (../shared/notes), without SQL: a patient's cases are sorted in
Python and walked in order. ``expected_summary`` reads the y1 files as they are on disk;
``readmission`` works on case dicts (tests/dbt builds those directly).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from dpc_elt.core import formats

CASE_KEY = ("facility_cd", "patient_id", "admission_date", "admission_seq_no")
# The §3 columns of mart.fact_case_summary besides the case key.
CONTRACT_COLUMNS = (
    "yyyymm",
    "days_since_prev_discharge",
    "is_readmission_7d",
    "is_readmission_30d",
    "is_unplanned",
    "days_to_next_admission",
    "readmitted_within_7d",
    "readmitted_within_30d",
)


def _within(days: int | None, limit: int) -> bool:
    return days is not None and 0 <= days <= limit


def is_unplanned(admission_type: str | None) -> bool:
    return admission_type is not None and (admission_type == "200" or admission_type.startswith("3"))


def readmission(cases: Iterable[Mapping[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """§3 for every case (dicts with the case key, yyyymm, discharge_date, admission_type), keyed by
    case key: days since the patient's previous discharge, days to the next admission, the flags."""
    by_patient: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for case in cases:
        by_patient[(case["facility_cd"], case["patient_id"])].append(case)
    out: dict[tuple, dict[str, Any]] = {}
    for patient_cases in by_patient.values():
        ordered = sorted(patient_cases, key=lambda c: (c["admission_date"], int(c["admission_seq_no"])))
        for i, case in enumerate(ordered):
            prev = ordered[i - 1] if i > 0 else None
            nxt = ordered[i + 1] if i + 1 < len(ordered) else None
            since = (case["admission_date"] - prev["discharge_date"]).days if prev else None
            to_next = (nxt["admission_date"] - case["discharge_date"]).days if nxt else None
            key = (case["facility_cd"], case["patient_id"], case["admission_date"], int(case["admission_seq_no"]))
            out[key] = {
                "yyyymm": case["yyyymm"],
                "days_since_prev_discharge": since,
                "is_readmission_7d": _within(since, 7),
                "is_readmission_30d": _within(since, 30),
                "is_unplanned": is_unplanned(case["admission_type"]),
                "days_to_next_admission": to_next,
                "readmitted_within_7d": _within(to_next, 7),
                "readmitted_within_30d": _within(to_next, 30),
            }
    return out


def _date(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def y1_cases(raw_root: str | Path, months: Iterable[str]) -> list[dict[str, Any]]:
    """The cases of the y1 files of ``months`` as they are on disk; a case key delivered in two
    months counts once, from the later month (§3's latest-month rule)."""
    cases: dict[tuple, dict[str, Any]] = {}
    for yyyymm in sorted(months):
        for path in sorted((Path(raw_root) / f"yyyymm={yyyymm}").glob("FF1_*.txt")):
            month_cases: dict[tuple, dict[str, Any]] = {}
            for number, line in enumerate(path.read_bytes().decode("cp932").splitlines(), start=1):
                if number == 1 and formats.is_header(line.encode("cp932")):
                    continue
                row = dict(zip(formats.Y1.columns, line.split("\t"), strict=True))
                if row["summary_no"] != "0":
                    continue
                admission = _date(row["admission_date"])
                key = (row["facility_cd"], row["patient_id"], admission, int(row["admission_seq_no"]))
                case = month_cases.setdefault(key, dict(zip(CASE_KEY, key, strict=True), yyyymm=yyyymm))
                if row["item_code"] == "A000020":
                    case["admission_type"] = row["payload_5"]
                if row["item_code"] == "A000030":
                    case["discharge_date"] = _date(row["payload_1"])
            cases.update(month_cases)
    return list(cases.values())


def expected_summary(raw_root: str | Path, months: Iterable[str]) -> dict[tuple, dict[str, Any]]:
    """§3 over the y1 files of ``months``: what mart.fact_case_summary must hold, keyed by case key."""
    return readmission(y1_cases(raw_root, months))


def summary_by_key(columns: Iterable[str], rows: Iterable[tuple]) -> dict[tuple, dict[str, Any]]:
    """fact_case_summary rows (or exported Parquet rows) in the oracle's shape; a duplicate fails."""
    columns = list(columns)
    out: dict[tuple, dict[str, Any]] = {}
    for values in rows:
        row = dict(zip(columns, values, strict=True))
        key = tuple(row[c] for c in CASE_KEY)
        assert key not in out, f"duplicate case {key[2:]} in fact_case_summary"
        out[key] = {c: row[c] for c in CONTRACT_COLUMNS}
    return out
