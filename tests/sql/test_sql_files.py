"""Every SQL file under include/sql: documented, values bound, identifiers allow-listed, and parsable.

Portable files must parse in both dialects (DuckDB and Redshift, with sqlfluff); a file under
``include/sql/<dialect>/`` only in its own. Bound parameters are replaced by a string literal for
parsing, so the check is about the SQL around them.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import jinja2.meta
import pytest
from sqlfluff.core import Linter

from dpc_elt.backends.embedded_load import field_rule_identifiers
from dpc_elt.core import formats, settings, sqlfiles

SQL_DIR = settings.SQL_DIR
FILES = sorted(p.relative_to(SQL_DIR) for p in SQL_DIR.rglob("*.sql"))
# Identifiers and the layouts' field rules, all from dpc_elt.core (never a value from outside).
ALLOWED_TEMPLATE_VALUES = {"schema", "table", "columns", *field_rule_identifiers(formats.D)}
SAMPLE_IDENTIFIERS = {
    "schema": settings.RAW_SCHEMA,
    "table": formats.Y1.raw_table,
    "columns": formats.LINEAGE_COLUMNS + formats.Y1.columns,
    **field_rule_identifiers(formats.D),
}


def dialects_of(path: Path) -> tuple[str, ...]:
    return (path.parts[0],) if path.parts[0] in sqlfiles.DIALECTS else sqlfiles.DIALECTS


def name_of(path: Path) -> str:
    parts = path.parts[1:] if path.parts[0] in sqlfiles.DIALECTS else path.parts
    return str(Path(*parts).with_suffix(""))


def test_there_are_sql_files():
    assert len(FILES) >= 8


@pytest.mark.parametrize("path", FILES, ids=str)
def test_opens_with_a_comment_saying_purpose_and_parameters(path):
    lines = (SQL_DIR / path).read_text(encoding="utf-8").splitlines()
    header = [line for line in lines[:6] if line.startswith("--")]
    assert 3 <= len(header) <= 5, "open with a 3–5 line comment: purpose, parameters, idempotent?"
    assert re.search(r"[Pp]arameters?:|[Nn]o parameters", "\n".join(header)), "say which parameters it binds"


@pytest.mark.parametrize("path", FILES, ids=str)
def test_jinja_renders_only_allow_listed_identifiers(path):
    source = (SQL_DIR / path).read_text(encoding="utf-8")
    used = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(source))
    assert used <= ALLOWED_TEMPLATE_VALUES, f"values must be bound parameters, not template values: {used}"


@pytest.mark.parametrize("path", FILES, ids=str)
def test_parses_in_each_dialect_it_serves(path):
    for dialect in dialects_of(path):
        rendered = sqlfiles.render_sql(name_of(path), dialect, **SAMPLE_IDENTIFIERS)
        if sqlfiles.sql_path(name_of(path), dialect) != SQL_DIR / path:
            continue  # a dialect file replaces this portable one there
        statements = sqlfiles.split_statements(rendered)
        literal = "\n".join(re.sub(r"(?<![:\w]):[A-Za-z_]\w*", "'202504'", s) + ";" for s in statements)
        parsed = Linter(dialect=dialect).parse_string(literal + "\n")
        problems = [v.desc() for v in parsed.violations]
        assert not problems, f"{path} in {dialect}: {problems[:2]}"
        assert len(statements) == sum(1 for segment in parsed.tree.segments if segment.is_type("statement"))


def test_bound_parameters_become_duckdb_placeholders_but_casts_stay():
    statement = "select x::date from t where yyyymm = :yyyymm and a = :a_b"
    assert sqlfiles.to_duckdb_params(statement) == "select x::date from t where yyyymm = $yyyymm and a = $a_b"
    assert sqlfiles.bound_names(statement) == {"yyyymm", "a_b"}


def test_raw_schema_is_quoted_because_raw_is_reserved_in_redshift():
    for path in FILES:
        text = (SQL_DIR / path).read_text(encoding="utf-8")
        assert not re.search(r"(?<![\"\w])raw\.", text), f'{path}: write "raw".<table> (RAW is a Redshift keyword)'
