"""Parameters: every trigger input is validated, an injection attempt is refused before any SQL runs,
and SQL takes values only as bound parameters (no SQL assembled from strings in product code)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dpc_elt.backends import embedded
from dpc_elt.core import manifest, params, settings
from dpc_elt.core.errors import ParameterError
from tests.reliability import support

REPO = settings.REPO_ROOT
BAD_MONTHS = [
    "202504'; DROP TABLE raw.y1; --",
    "202504; select 1",
    "2025-04",
    "202513",
    "202500",
    "189912",
    "210001",
    "20254",
    "2025041",
    " 202504",
    "202504\n",
    "２０２５０４",  # full-width digits
    "../202504",
    "yyyymm=202504",
    "",
    202504,
    None,
    ["202504"],
]


class SqlWouldRun(AssertionError):
    pass


@pytest.fixture
def no_sql(monkeypatch):
    """Any attempt to open the warehouse fails the test: validation must come first."""

    def refuse(*args, **kwargs):
        raise SqlWouldRun("the warehouse was opened before the month was validated")

    monkeypatch.setattr(embedded, "connect", refuse)
    import duckdb

    monkeypatch.setattr(duckdb, "connect", refuse)


@pytest.mark.parametrize("value", BAD_MONTHS, ids=repr)
def test_validate_yyyymm_refuses(value):
    with pytest.raises(ParameterError) as info:
        params.validate_yyyymm(value)
    # one fixed message: the input is never echoed into logs or notices
    assert str(info.value) == "yyyymm must be a real month written as six digits yyyymm (e.g. 202504)"


@pytest.mark.parametrize("value", ["190001", "202504", "209912"])
def test_validate_yyyymm_accepts_real_months(value):
    assert params.validate_yyyymm(value) == value


@pytest.fixture(scope="module")
def trigger_form():
    from airflow.sdk import Param

    return {name: Param(**schema) for name, schema in params.param_schemas().items()}


@pytest.mark.parametrize(
    "value",
    [v for v in BAD_MONTHS if v not in ("", None)],
    ids=repr,
)
def test_trigger_form_refuses_bad_month(trigger_form, value):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        trigger_form["yyyymm"].resolve(value)


@pytest.mark.parametrize("value", [-1, 1441, "60", 1.5, None, True])
def test_trigger_form_refuses_bad_wait(trigger_form, value):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        trigger_form["manifest_wait_minutes"].resolve(value)


def test_trigger_form_accepts_the_defaults_and_a_month(trigger_form):
    assert trigger_form["yyyymm"].resolve("202504") == "202504"
    assert trigger_form["yyyymm"].resolve(None) is None
    assert trigger_form["manifest_wait_minutes"].resolve(0) == 0


def test_an_empty_month_means_the_month_before_the_logical_date():
    from datetime import UTC, datetime

    assert params.target_month({"yyyymm": ""}, datetime(2025, 5, 1, 0, 30, tzinfo=UTC), None) == "202504"
    with pytest.raises(ParameterError):
        params.target_month({"yyyymm": "2025-04"}, datetime(2025, 5, 1, tzinfo=UTC), None)


@pytest.mark.parametrize("value", BAD_MONTHS[:4], ids=repr)
def test_run_local_refuses_before_parsing_the_dag(value, monkeypatch):
    import airflow.dag_processing.dagbag as dagbag

    from dpc_elt.dev import run_local

    monkeypatch.setattr(dagbag, "DagBag", lambda *a, **k: pytest.fail("DAG parsed for a bad month"))
    with pytest.raises(ParameterError):
        run_local.run_month(value)


@pytest.mark.parametrize("value", BAD_MONTHS[:4], ids=repr)
def test_validation_and_load_refuse_before_any_sql(value, no_sql, tmp_path):
    cfg = support.cfg_under(tmp_path)
    with pytest.raises(ParameterError):
        manifest.validate_month(cfg.raw_root, value)
    with pytest.raises(ParameterError):
        manifest.month_uri(cfg.raw_root, value)
    checked = manifest.ValidatedManifest(yyyymm="202504", created_at="x", files=())
    with pytest.raises(ParameterError):
        embedded.EmbeddedBackend(cfg).load_month(value, checked)


@pytest.mark.parametrize("step", ["rollback_stage", "compute_readmit", "month_counts", "export_months"])
def test_every_warehouse_step_refuses_a_bad_month_before_any_sql(step, no_sql, tmp_path):
    cfg = support.cfg_under(tmp_path)
    bad = "202504'; DROP TABLE raw.y1; --"
    with pytest.raises(ParameterError):
        if step == "export_months":
            embedded.EmbeddedBackend(cfg).export_months([bad])
        else:
            getattr(embedded.EmbeddedBackend(cfg), step)(bad)


def test_dbt_refuses_a_bad_month_var_before_it_reaches_sql(loaded, dbt):
    """dpc_target_month() validates DPC_YYYYMM again: every model that would render it fails to compile,
    nothing of the warehouse changes (models that do not use the month rebuild to the same rows)."""
    before = support.fingerprint(loaded)
    for value in ('202504\'; drop table "raw".y1; --', "2025-04", "202513"):
        result = dbt.invoke(loaded, "run", month=value)
        assert not result.success
        statuses = {r.node.name: str(r.status) for r in result.result}
        staging = {name: status for name, status in statuses.items() if name in settings.STAGE_TABLES}
        assert len(staging) == 4 and set(staging.values()) == {"error"}, statuses
        assert statuses["stg_dpc__ef_in"] == "success"  # the typed view over raw renders no month
        messages = " ".join(str(r.message) for r in result.result if str(r.status) == "error")
        assert "DPC_YYYYMM must be a real month" in messages
    assert support.fingerprint(loaded) == before


# ----------------------------------------------------------------------------- bound parameters

_SQL = re.compile(
    r"\s*(select\b[\s\S]*\bfrom|with\s+\w+\s+as\s*\(|insert\s+into|delete\s+from|update\s+[\w\".]+\s+set"
    r"|merge\s+into|(drop|create|alter)\s+(or\s+replace\s+)?(temp\s+|temporary\s+)?(table|schema|view|database)"
    r"|truncate\s+(table\s+)?[\w\"]|copy\s+[\w\".]+\s+from|unload\s*\(|grant\s+\w+\s+on|vacuum\b|analyze\b)",
    re.IGNORECASE,
)
# Keyword arguments that hold prose for people (Airflow docs, help texts), not statements.
_PROSE_KEYWORDS = {"doc_md", "doc", "description", "tooltip", "help"}


def sql_built_from_strings(source: str, filename: str = "<string>") -> list[str]:
    """Places where a string that starts like a SQL statement is assembled with an f-string,
    ``.format``, ``%`` or ``+`` from something that is not a constant."""
    tree = ast.parse(source, filename)
    prose = {
        id(kw.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg in _PROSE_KEYWORDS
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in prose:
            continue
        text = None
        if isinstance(node, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in node.values):
            text = "".join(v.value if isinstance(v, ast.Constant) else " x " for v in node.values)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("format", "format_map")
            and isinstance(node.func.value, ast.Constant)
            and isinstance(node.func.value.value, str)
        ):
            text = node.func.value.value
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
            sides = [node.left, node.right]
            constants = [s.value for s in sides if isinstance(s, ast.Constant) and isinstance(s.value, str)]
            if len(constants) == 1 and isinstance(node.left, ast.Constant):
                text = constants[0]
        if text is not None and _SQL.match(text):
            found.append(f"{filename}:{node.lineno}: {text.strip()[:60]!r}")
    return found


def product_files() -> list[Path]:
    return sorted([*(REPO / "plugins" / "dpc_elt").rglob("*.py"), *(REPO / "dags").rglob("*.py")])


def test_the_scanner_finds_sql_built_from_strings():
    source = '''
table = "x"
a = f"select * from {table} where yyyymm = '{m}'"
b = "DELETE FROM raw.y1 WHERE yyyymm = '{}'".format(m)
c = "insert into t values (%s)" % m
d = "drop table " + table
e = f"""
    with months as (select '{m}' as yyyymm)
    select * from months"""
ok1 = f"export_parquet/select_{table}"
ok2 = "select * from t where yyyymm = :yyyymm"
ok3 = f"{name}: warehouse is locked by another writer"
ok4 = Op(doc_md=f"DELETE the month from `raw.{table}`, then COPY it from the staged files")
ok5 = f"could not copy {name} from {where}"
'''
    assert [line.split(":")[1] for line in sql_built_from_strings(source)] == ["3", "4", "5", "6", "7"]


# Statement-shaped texts that are advice for people (maintenance findings in notices), never executed.
ADVICE = {
    ("plugins/dpc_elt/backends/", "'VACUUM FULL  x  TO 100 PERCENT"),
    ("plugins/dpc_elt/backends/", "'ANALYZE  x'"),
}


def test_no_sql_is_assembled_from_strings_in_product_code():
    files = product_files()
    assert len(files) > 10
    found = [
        hit
        for path in files
        for hit in sql_built_from_strings(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    ]
    found = [hit for hit in found if not any(hit.startswith(f) and t in hit for f, t in ADVICE)]
    assert found == []


def test_sql_files_render_only_allow_listed_identifiers():
    """Jinja in include/sql renders identifiers (schema, table, columns) and the layouts' field rules from
    dpc_elt.core.formats only; values are ``:name``."""
    import jinja2
    from jinja2 import meta

    from dpc_elt.backends.embedded_load import field_rule_identifiers
    from dpc_elt.core import formats

    env = jinja2.Environment(autoescape=False)
    allowed = {"schema", "table", "columns", "column", "loop", *field_rule_identifiers(formats.D)}
    files = sorted(settings.SQL_DIR.rglob("*.sql"))
    assert files
    for path in files:
        names = meta.find_undeclared_variables(env.parse(path.read_text(encoding="utf-8")))
        assert names <= allowed, (path.relative_to(REPO), names - allowed)


# --- facility_cd (a one-facility reload) ---------------------------------------------------------------

BAD_FACILITIES = ["13100012", "1310001234", "13100012a", "131000123' or '1'='1", " 131000123"]


@pytest.mark.parametrize("value", [*BAD_FACILITIES, 131000123], ids=repr)
def test_trigger_form_refuses_bad_facility_codes(trigger_form, value):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        trigger_form["facility_cd"].resolve(value)
    assert trigger_form["facility_cd"].resolve("131000123") == "131000123"
    assert trigger_form["facility_cd"].resolve(None) is None


@pytest.mark.parametrize("value", BAD_FACILITIES, ids=repr)
def test_run_local_and_every_step_refuse_a_bad_facility_before_any_sql(value, monkeypatch, no_sql, tmp_path):
    import airflow.dag_processing.dagbag as dagbag

    from dpc_elt.dev import run_local

    monkeypatch.setattr(dagbag, "DagBag", lambda *a, **k: pytest.fail("DAG parsed for a bad facility code"))
    with pytest.raises(ParameterError):
        run_local.run_month("202504", facility_cd=value)
    with pytest.raises(ParameterError):  # make run-month FACILITY_CD=…: refused before anything runs
        run_local.main(["--yyyymm", "202504", "--facility-cd", value])
    cfg = support.cfg_under(tmp_path)
    backend = embedded.EmbeddedBackend(cfg)
    with pytest.raises(ParameterError):
        manifest.validate_month(cfg.raw_root, "202504", facility_cd=value)
    checked = manifest.ValidatedManifest(yyyymm="202504", created_at="x", files=(), facility_cd=value)
    for call in (
        lambda: backend.load_month("202504", checked),
        lambda: backend.rollback_stage("202504", value),
        lambda: backend.compute_readmit("202504", value),
    ):
        with pytest.raises(ParameterError):
            call()


def test_dbt_refuses_a_bad_facility_before_it_reaches_sql(loaded, dbt):
    before = support.fingerprint(loaded)
    result = dbt.invoke(loaded, "run", month="202504", facility="131000123' or '1'='1")
    assert not result.success
    messages = " ".join(str(r.message) for r in result.result if str(r.status) == "error")
    assert "DPC_FACILITY_CD must be a facility code of exactly nine digits" in messages
    assert support.fingerprint(loaded) == before
