"""The queries of the monthly quality report (``include/sql/quality_report``): which SQL file, with which
allow-listed identifiers, under which key. Both backends run them in this order, each binding only
``:yyyymm``; every query groups and counts (no row-level value leaves the warehouse)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dpc_elt.core import formats, settings


@dataclass(frozen=True)
class Query:
    """One query of the report: the key its rows are stored under, the SQL file and its identifiers."""

    key: str
    name: str
    identifiers: Mapping[str, str] = field(default_factory=dict)


def queries() -> list[Query]:
    found = [
        Query(
            f"file:{layout.file_type}",
            "quality_report/rows_per_file",
            {"schema": settings.RAW_SCHEMA, "table": layout.raw_table},
        )
        for layout in formats.LAYOUTS.values()
    ]
    found += [
        Query("facilities", "quality_report/cases_per_facility"),
        Query("mdcs", "quality_report/cases_per_mdc"),
        Query("warnings", "quality_report/count_warnings"),
    ]
    return found
