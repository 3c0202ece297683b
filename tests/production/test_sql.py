"""What the production backend sends as SQL: literal slots (COPY/UNLOAD cannot bind) filled only with
validated values, bound parameters exactly as the Data API wants them, and every rendered statement —
not only the templates that tests/sql parses — valid Redshift SQL for sqlfluff."""

from __future__ import annotations

import re

import pytest
from sqlfluff.core import Linter

from dpc_elt.backends.redshift import data_api, export, load
from dpc_elt.backends.redshift.data_api import Batch, render_literals, sql_batch, sql_literal
from dpc_elt.backends.redshift.s3 import S3Uri
from dpc_elt.core import formats, settings
from tests.production.conftest import BUCKET, ROLE_ARN, production_settings

STAGED = f"s3://{BUCKET}/staging/yyyymm=202504/_copy_y1.manifest"


def parses_as_redshift(statements: list[str]) -> None:
    """sqlfluff knows no ``:name`` placeholders: bound parameters become a literal, as in tests/sql."""
    text = ";\n".join(re.sub(r"(?<![:\w]):[A-Za-z_]\w*", "'202504'", s) for s in statements)
    parsed = Linter(dialect="redshift").parse_string(text + ";\n")
    problems = [v.desc() for v in parsed.violations]
    assert not problems, problems[:2]
    assert sum(1 for s in parsed.tree.segments if s.is_type("statement")) == len(statements)


@pytest.mark.parametrize("value", ["a\\b", "line\nbreak", "tab\there", "nul\x00"])
def test_a_literal_never_holds_a_backslash_or_control_character(value):
    with pytest.raises(ValueError):
        sql_literal(value)


def test_quotes_are_doubled_and_bound_parameters_stay_bound():
    assert sql_literal("it's") == "'it''s'"
    rendered = render_literals(
        "copy t from :uri iam_role :role where yyyymm = :yyyymm", {"uri": "s3://b/k", "role": "r"}
    )
    assert rendered == "copy t from 's3://b/k' iam_role 'r' where yyyymm = :yyyymm"
    with pytest.raises(ValueError, match="not in the statement"):
        render_literals("select 1", {"uri": "x"})


def test_batch_parameters_are_exactly_the_names_the_statements_bind():
    batch = Batch(["delete from t where yyyymm = :yyyymm", "select 1"], frozenset({"yyyymm"}))
    assert batch.parameters({"yyyymm": "202504", "unused": "x"}) == [{"name": "yyyymm", "value": "202504"}]
    assert Batch(["select 1"], frozenset()).parameters({"yyyymm": "202504"}) is None
    with pytest.raises(ValueError, match="no value for bound parameters"):
        batch.parameters({})


def test_the_load_batch_renders_validated_literals_and_parses():
    where = data_api.target(production_settings())
    manifests = {t: f"s3://{BUCKET}/staging/yyyymm=202504/_copy_{t}.manifest" for t in formats.FILE_TYPES}
    files = [{"file_type": t, "records": 2} for t in formats.FILE_TYPES]
    batch, copies = load.load_batch({"copy_manifests": manifests, "files": files}, where)
    assert batch.bound == {"yyyymm"} and [c["position"] for c in copies] == [4, 8, 12]
    copy = batch.statements[3]
    assert f"from '{STAGED}'" in copy and f"iam_role '{ROLE_ARN}'" in copy
    assert copy.startswith(f'copy "raw"."y1" ({", ".join(formats.LINEAGE_COLUMNS + formats.Y1.columns)})')
    assert "maxerror 0" in copy and "delimiter '\\t'" in copy and "manifest" in copy and "statupdate on" in copy
    parses_as_redshift(batch.statements)


def test_the_unload_statement_quotes_the_query_once_and_parses():
    cfg = production_settings()
    query = export.unload_query(settings.SUMMARY_TABLE, "202504")
    assert "\n" not in query and "yyyymm = '202504'" in query
    literals = {"unload_query": query, "unload_target": f"s3://{BUCKET}/processed/", "iam_role_arn": ROLE_ARN}
    (unload,) = sql_batch("export_parquet/unload_month", literals).statements
    assert unload.startswith("unload ('select * from mart.fact_case_summary where yyyymm = ''202504'' order by")
    assert "partition by (yyyymm) include" in unload and "cleanpath" in unload
    assert data_api.target(cfg).processed == S3Uri(BUCKET, "processed")
    parses_as_redshift([unload])


def test_every_production_batch_parses_as_redshift():
    batches = [
        sql_batch("compute_readmit/create_fact_case_summary") + sql_batch("compute_readmit/merge_fact_case_summary"),
        sql_batch("copy_raw/select_load_errors"),
        sql_batch("shared/select_existing_tables"),
        sql_batch("maintenance/select_table_health"),
        sql_batch("maintenance/vacuum_table", schema="raw", table="y1"),
        sql_batch("maintenance/analyze_compression_table", schema="raw", table="y1"),
        *(sql_batch("shared/delete_month", schema=settings.STAGE_SCHEMA, table=t) for t in settings.STAGE_TABLES),
    ]
    for batch in batches:
        parses_as_redshift(batch.statements)


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("s3_bucket", "Bad_Bucket", "DPC_S3_BUCKET"),
        ("raw_root", "/local/raw", "DPC_RAW_ROOT"),
        ("processed_root", "s3://dpc-test-bucket/proc essed", "DPC_PROCESSED_ROOT"),
        ("redshift_workgroup", "", "DPC_REDSHIFT_WORKGROUP"),
        ("redshift_database", "dpc; drop", "DPC_REDSHIFT_DATABASE"),
        ("redshift_iam_role_arn", "arn:aws:iam::123456789012:role/r'x", "DPC_REDSHIFT_IAM_ROLE_ARN"),
    ],
)
def test_each_production_setting_is_validated_and_named(field, value, variable):
    with pytest.raises(ValueError, match=variable):
        data_api.target(production_settings(**{field: value}))


def test_a_batch_over_the_data_api_limit_is_refused_before_it_is_sent():
    api = data_api.DataApi(data_api.target(production_settings()), hook=object())  # never called
    with pytest.raises(ValueError, match="at most 40"):
        api.submit(Batch(["select 1"] * 41, frozenset()), {}, name="too_many")
    with pytest.raises(ValueError, match="exactly one statement"):
        api.submit(Batch(["select 1", "select 2"], frozenset()), {}, name="two", single=True)
