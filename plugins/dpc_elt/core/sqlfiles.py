"""Load the SQL files under ``include/sql``.

Portable SQL lives in ``include/sql/<step>/<name>.sql``; a file of the same relative path under
``include/sql/<dialect>/`` replaces it where the dialects truly differ. Values are always bound
parameters written ``:name`` (the Redshift Data API's style); DuckDB gets them as ``$name``.
Jinja renders identifiers only, and only from the allow-lists in ``settings``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dpc_elt.core import settings
from dpc_elt.core.params import validate_facility_cd, validate_yyyymm

DIALECTS = ("duckdb", "redshift")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def sql_path(name: str, dialect: str) -> Path:
    """The file for ``name`` (e.g. ``compute_readmit/merge_fact_case_summary``) in ``dialect``."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    specific = settings.SQL_DIR / dialect / f"{name}.sql"
    return specific if specific.exists() else settings.SQL_DIR / f"{name}.sql"


def render_sql(name: str, dialect: str, **identifiers: object) -> str:
    """The file's text with identifiers rendered. Values must stay bound parameters."""
    import jinja2

    text = sql_path(name, dialect).read_text(encoding="utf-8")
    # SQL, not HTML: escaping would corrupt it; only allow-listed identifiers are rendered.
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)  # noqa: S701
    return env.from_string(text).render(**identifiers)


def split_statements(sql: str) -> list[str]:
    """Split on ``;`` at line ends. Our files keep one statement per ``;``-terminated block and
    put no semicolons inside literals or comments, which the test suite checks."""
    statements = []
    for chunk in re.split(r";[ \t]*(?:\n|$)", sql):
        body = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--")).strip()
        if body:
            statements.append(body)
    return statements


def statements(name: str, dialect: str, **identifiers: object) -> list[str]:
    return split_statements(render_sql(name, dialect, **identifiers))


def to_duckdb_params(statement: str) -> str:
    """``:name`` placeholders to DuckDB's ``$name``; ``::`` casts are left alone."""
    return _PARAM.sub(r"$\1", statement)


def bound_names(statement: str) -> set[str]:
    return set(_PARAM.findall(statement))


@dataclass(frozen=True)
class ReplacedRows:
    """What a step replaces in a table: the month, or one facility's rows of it (a one-facility reload).
    The SQL files that count and delete those rows, and their bound values."""

    delete_sql: str
    count_sql: str
    values: dict[str, str]


def month_or_facility(yyyymm: str, facility_cd: str | None) -> ReplacedRows:
    """The month's rows, or with ``facility_cd`` only that facility's; both validated before any SQL."""
    validate_yyyymm(yyyymm)
    if not facility_cd:
        return ReplacedRows("shared/delete_month", "shared/count_month", {"yyyymm": yyyymm})
    values = {"yyyymm": yyyymm, "facility_cd": validate_facility_cd(facility_cd)}
    return ReplacedRows("shared/delete_facility_month", "shared/count_facility_month", values)


ALL_FACILITIES = "*"  # compute_readmit's :facility_cd for every facility (a Data API value is never empty)


def readmit_values(yyyymm: str, facility_cd: str | None) -> dict[str, str]:
    """compute_readmit's bound values: the month, and the facility whose patients of it are recomputed."""
    return {
        "yyyymm": validate_yyyymm(yyyymm),
        "facility_cd": validate_facility_cd(facility_cd) if facility_cd else ALL_FACILITIES,
    }
