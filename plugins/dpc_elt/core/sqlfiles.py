"""Load the SQL files under ``include/sql``.

Portable SQL lives in ``include/sql/<step>/<name>.sql``; a file of the same relative path under
``include/sql/<dialect>/`` replaces it where the dialects truly differ. Values are always bound
parameters written ``:name`` (the Redshift Data API's style); DuckDB gets them as ``$name``.
Jinja renders identifiers only, and only from the allow-lists in ``settings``.
"""

from __future__ import annotations

import re
from pathlib import Path

from dpc_elt.core import settings

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
