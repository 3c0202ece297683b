"""The tables the pipeline writes, as allow-lists: identifiers in SQL templates come only from here.

Used by the backends (the in-batch ANALYZE after a load, the health of each table) and by the
maintenance DAGs. Intermediate models are views and the ``ref`` seeds are tiny and static: neither
is maintained.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dpc_elt.core import formats, settings


@dataclass(frozen=True)
class Table:
    """One warehouse table that maintenance touches."""

    schema: str
    table: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def task_suffix(self) -> str:
        return f"{self.schema}__{self.table}"


@dataclass(frozen=True)
class TableHealth:
    """What the weekly checks look at, per table (None: the backend has no such notion)."""

    name: str
    rows: int
    unsorted_pct: float | None = None
    unused_pct: float | None = None
    skew_pct: float | None = None
    rows_since_analyze: int | None = None


MART_MODELS = ("fct_cases", "dim_facility", "dim_icd10", "dim_mdc")
RAW_TABLES = tuple(Table(settings.RAW_SCHEMA, layout.raw_table) for layout in formats.LAYOUTS.values())
STAGE_TABLES = tuple(Table(settings.STAGE_SCHEMA, table) for table in settings.STAGE_TABLES)
MART_TABLES = tuple(Table(settings.MART_SCHEMA, table) for table in (*MART_MODELS, settings.SUMMARY_TABLE))
LAYERS: dict[str, tuple[Table, ...]] = {"raw": RAW_TABLES, "stage": STAGE_TABLES, "mart": MART_TABLES}
MAINTAINED_TABLES = RAW_TABLES + STAGE_TABLES + MART_TABLES


def tables_of(layers: Iterable[str]) -> tuple[Table, ...]:
    wanted = set(layers)
    unknown = wanted - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown layers {sorted(unknown)}; use {sorted(LAYERS)}")
    return tuple(table for layer in LAYERS if layer in wanted for table in LAYERS[layer])


def maintained_table(qualified: str) -> Table:
    """The allow-listed table named ``schema.table``, or ValueError."""
    for table in MAINTAINED_TABLES:
        if table.qualified == qualified:
            return table
    raise ValueError(f"{qualified!r} is not a maintained table")


# Where a run's month lands, counted for the success notice and the quality report.
MONTH_TABLES: tuple[tuple[str, str], ...] = (
    *((t.schema, t.table) for t in RAW_TABLES),
    *((t.schema, t.table) for t in STAGE_TABLES),
    (settings.MART_SCHEMA, settings.SUMMARY_TABLE),
)
