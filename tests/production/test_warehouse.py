"""The production step functions (same names and results as dpc_elt.embedded): rollback_stage,
compute_readmit, month_counts and export_months send exactly the expected Data API requests (Stubber),
and export_parquet's UNLOAD output on (moto) S3 gets its _manifest.json with streamed hashes."""

from __future__ import annotations

import hashlib
import json

import pytest
from botocore.stub import ANY

from dpc_elt import production, settings, sqlfiles
from tests.production.conftest import BUCKET, ROLE_ARN
from tests.production.support import YYYYMM

PARAMS = [{"name": "yyyymm", "value": YYYYMM}]
SCHEMAS = [
    {"name": "mart_schema", "value": "mart"},
    {"name": "raw_schema", "value": "raw"},
    {"name": "stage_schema", "value": "stage"},
]


def expect_existing_tables(stub, tables: list[tuple[str, str]]) -> None:
    sid = stub.expect_statement(ANY, SCHEMAS)
    stub.expect_describe(sid)
    stub.expect_result(sid, [list(t) for t in tables])


def test_compute_readmit_is_one_batch_and_reads_the_last_sub_statement(data_api, cfg):
    portable = [
        *sqlfiles.statements("compute_readmit/create_fact_case_summary", "duckdb"),
        *sqlfiles.statements("compute_readmit/merge_fact_case_summary", "duckdb"),
    ]
    assert len(portable) == 11  # 2 create + 9 merge; the last one selects the changed months
    sid = data_api.expect_batch(portable, PARAMS, f"dpc_elt.compute_readmit.{YYYYMM}")
    data_api.expect_describe(sid)
    data_api.stubber.add_response(
        "get_statement_result",
        {"Records": [[{"stringValue": "202503"}]], "NextToken": "page-2"},
        {"Id": f"{sid}:11"},
    )
    data_api.stubber.add_response(
        "get_statement_result", {"Records": [[{"stringValue": "202505"}]]}, {"Id": f"{sid}:11", "NextToken": "page-2"}
    )

    assert production.compute_readmit(YYYYMM, cfg) == ["202503", "202504", "202505"]
    data_api.assert_done()
    (batch,) = [s for s in data_api.sent if s["operation"] == "BatchExecuteStatement"]
    assert "create temp table dpc_readmit_expected as" in batch["Sqls"][3]
    assert batch["Sqls"][-1] == "select distinct yyyymm from dpc_readmit_months order by 1"


def test_rollback_stage_deletes_the_month_from_existing_stage_tables_in_one_batch(data_api, cfg):
    expect_existing_tables(data_api, [("raw", "y1"), ("stage", "stg_dpc__y1_cases"), ("stage", "stg_dpc__d")])
    sid = data_api.expect_batch(
        [
            'delete from "stage"."stg_dpc__y1_cases" where yyyymm = :yyyymm',
            'delete from "stage"."stg_dpc__d" where yyyymm = :yyyymm',
        ],
        PARAMS,
        f"dpc_elt.rollback_stage.{YYYYMM}",
    )
    data_api.expect_describe(sid)
    data_api.expect_describe(
        sid, subs=[{"Status": "FINISHED", "ResultRows": 12}, {"Status": "FINISHED", "ResultRows": 0}]
    )

    assert production.rollback_stage(YYYYMM, cfg) == {"stg_dpc__y1_cases": 12, "stg_dpc__d": 0}
    data_api.assert_done()


def test_rollback_with_no_stage_table_sends_no_batch(data_api, cfg):
    expect_existing_tables(data_api, [("raw", "y1")])
    assert production.rollback_stage(YYYYMM, cfg) == {}
    data_api.assert_done()


def test_month_counts_are_one_batch_of_counts_over_existing_tables(data_api, cfg):
    expect_existing_tables(data_api, [("raw", "y1"), ("raw", "d"), ("mart", "fact_case_summary")])
    sid = data_api.expect_batch(
        [
            'select count(*) from "raw"."y1" where yyyymm = :yyyymm',
            'select count(*) from "raw"."d" where yyyymm = :yyyymm',
            'select count(*) from "mart"."fact_case_summary" where yyyymm = :yyyymm',
        ],
        PARAMS,
        ANY,
    )
    data_api.expect_describe(sid)
    for n, count in enumerate([2210, 15, 120], start=1):
        data_api.expect_result(f"{sid}:{n}", [[count]])

    assert production.month_counts(YYYYMM, cfg) == {"raw.y1": 2210, "raw.d": 15, "mart.fact_case_summary": 120}
    data_api.assert_done()


@pytest.mark.parametrize("bad", ["2025-04", "202513", "202504' or '1'='1", 202504])
def test_a_month_that_is_not_six_digits_never_reaches_sql(data_api, cfg, bad):
    from dpc_elt.errors import ParameterError

    with pytest.raises(ParameterError):
        production.unload_query(settings.SUMMARY_TABLE, bad)
    with pytest.raises(ParameterError):
        production.export_months([bad], cfg)
    data_api.assert_done()  # not one request


def parquet_bytes(tmp_path, rows: int) -> bytes:
    import duckdb

    path = tmp_path / f"{rows}.parquet"
    with duckdb.connect() as con:
        con.execute(f"copy (select '{YYYYMM}' as yyyymm, i as n from range({rows}) t(i)) to '{path}' (format parquet)")
    return path.read_bytes()


def test_export_unloads_each_month_then_writes_its_manifest_last(data_api, cfg, s3fs_, tmp_path):
    prefix = f"{BUCKET}/processed/yyyymm={YYYYMM}"
    s3fs_.pipe_file(f"{prefix}/stale_part_from_an_old_run.parquet", b"stale")  # must be cleared first
    s3fs_.pipe_file(f"{BUCKET}/processed/yyyymm=202503/0000_part_00.parquet", b"other month, untouched")
    parts = {"0000_part_00.parquet": parquet_bytes(tmp_path, 70), "0001_part_00.parquet": parquet_bytes(tmp_path, 50)}

    def unload_writes_parquet(params, **_):
        """What Redshift's UNLOAD does: Parquet parts under processed/yyyymm=<M>/."""
        if params.get("Sql", "").startswith("unload"):
            assert not s3fs_.exists(f"{prefix}/stale_part_from_an_old_run.parquet")
            for name, data in parts.items():
                s3fs_.pipe_file(f"{prefix}/{name}", data)

    data_api.client.meta.events.register("provide-client-params.redshift-data.ExecuteStatement", unload_writes_parquet)
    unload = (
        "unload ('select * from mart.fact_case_summary where yyyymm = ''202504'' "
        "order by facility_cd, patient_id, admission_date, admission_seq_no')\n"
        f"to 's3://{BUCKET}/processed/'\n"
        f"iam_role '{ROLE_ARN}'\n"
        "format as parquet\npartition by (yyyymm) include\ncleanpath"
    )
    sid = data_api.expect_statement(unload, None, f"dpc_elt.export_parquet.{YYYYMM}")
    data_api.expect_describe(sid)
    count = data_api.expect_statement('select count(*) from "mart"."fact_case_summary" where yyyymm = :yyyymm', PARAMS)
    data_api.expect_describe(count)
    data_api.expect_result(count, [[120]])

    (written,) = production.export_months([YYYYMM], cfg)

    data_api.assert_done()
    assert written["uri"] == f"s3://{prefix}"
    manifest = json.loads(s3fs_.cat_file(f"{prefix}/_manifest.json"))
    assert manifest["yyyymm"] == YYYYMM and manifest["compression"] == "snappy"
    assert (
        manifest["files"]
        == written["files"]
        == [
            {
                "table": "mart.fact_case_summary",
                "path": name,
                "rows": rows,
                "bytes": len(parts[name]),
                "sha256": hashlib.sha256(parts[name]).hexdigest(),
            }
            for name, rows in (("0000_part_00.parquet", 70), ("0001_part_00.parquet", 50))
        ]
    )
    assert s3fs_.cat_file(f"{BUCKET}/processed/yyyymm=202503/0000_part_00.parquet") == b"other month, untouched"


def test_export_refuses_parquet_that_does_not_hold_the_table_rows(data_api, cfg, s3fs_, tmp_path):
    prefix = f"{BUCKET}/processed/yyyymm={YYYYMM}"

    def unload_writes_parquet(params, **_):
        if params.get("Sql", "").startswith("unload"):
            s3fs_.pipe_file(f"{prefix}/0000_part_00.parquet", parquet_bytes(tmp_path, 119))

    data_api.client.meta.events.register("provide-client-params.redshift-data.ExecuteStatement", unload_writes_parquet)
    sid = data_api.expect_statement(ANY, None, ANY)
    data_api.expect_describe(sid)
    count = data_api.expect_statement(ANY, PARAMS)
    data_api.expect_describe(count)
    data_api.expect_result(count, [[120]])

    with pytest.raises(RuntimeError, match="hold 119 rows, fact_case_summary has 120"):
        production.export_months([YYYYMM], cfg)
    assert not s3fs_.exists(f"{prefix}/_manifest.json")


def test_a_failed_statement_surfaces_the_provider_error_and_nothing_else_runs(data_api, cfg):
    from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataQueryFailedError

    sid = data_api.expect_batch(ANY, PARAMS, ANY)
    data_api.expect_describe(sid, status="FAILED")
    with pytest.raises(RedshiftDataQueryFailedError):
        production.compute_readmit(YYYYMM, cfg)
    data_api.assert_done()
