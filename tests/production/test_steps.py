"""The production backend's other steps, each through submit → Pending (the provider's trigger for the
stubbed statement) → resume: rollback_stage, compute_readmit and export_months (month by month; the
UNLOAD's output on moto S3 gets its _manifest.json last), plus the quick reads (month_counts). Every
Data API request is checked exactly (botocore Stubber)."""

from __future__ import annotations

import hashlib
import json

import pytest
from botocore.stub import ANY

from dpc_elt.backends.base import Backend, Pending
from dpc_elt.backends.redshift import RedshiftBackend
from dpc_elt.backends.redshift.data_api import RedshiftStatementError
from dpc_elt.core import settings, sqlfiles
from dpc_elt.core.errors import ParameterError, WarehouseBusyError
from tests.production.conftest import BUCKET, CONN_ID, ROLE_ARN
from tests.production.support import (
    PARAMS,
    YYYYMM,
    expect_existing_tables,
    failure_event,
    success_event,
)


def deferred(result, sid: str, step: str) -> Pending:
    from airflow.providers.amazon.aws.triggers.redshift_data import RedshiftDataTrigger

    assert isinstance(result, Pending) and result.step == step == result.state["step"]
    assert isinstance(result.trigger, RedshiftDataTrigger) and result.trigger.statement_id == sid
    assert result.trigger.aws_conn_id == CONN_ID
    assert json.loads(json.dumps(result.state)) == result.state
    return result


def test_the_backend_is_the_production_one_and_builds_without_lookups(backend):
    assert isinstance(backend, RedshiftBackend) and isinstance(backend, Backend)
    assert (backend.name, backend.dialect, backend.dbt_target) == ("production", "redshift", "redshift")


# ------------------------------------------------------------------------------------ rollback_stage


def test_rollback_stage_deletes_the_month_from_existing_stage_tables_in_one_batch(backend, data_api):
    expect_existing_tables(data_api, [("raw", "y1"), ("stage", "stg_dpc__y1_cases"), ("stage", "stg_dpc__d")])
    sid = data_api.expect_batch(
        [
            'delete from "stage"."stg_dpc__y1_cases" where yyyymm = :yyyymm',
            'delete from "stage"."stg_dpc__d" where yyyymm = :yyyymm',
        ],
        PARAMS,
        f"dpc_elt.rollback_stage.{YYYYMM}",
    )
    pending = deferred(backend.rollback_stage(YYYYMM), sid, "rollback_stage")
    data_api.expect_describe(
        sid, subs=[{"Status": "FINISHED", "ResultRows": 12}, {"Status": "FINISHED", "ResultRows": 0}]
    )
    assert backend.resume(pending.state, success_event(sid)) == {"stg_dpc__y1_cases": 12, "stg_dpc__d": 0}
    data_api.assert_done()


def test_rollback_with_no_stage_table_sends_no_batch(backend, data_api):
    expect_existing_tables(data_api, [("raw", "y1")])
    assert backend.rollback_stage(YYYYMM) == {}
    data_api.assert_done()


def test_a_failed_rollback_names_the_statement_only(backend, data_api):
    expect_existing_tables(data_api, [("stage", "stg_dpc__d")])
    sid = data_api.expect_batch(ANY, PARAMS, ANY)
    pending = backend.rollback_stage(YYYYMM)
    data_api.expect_describe(sid, status="FAILED", subs=[{"Status": "FAILED", "Error": "ERROR: no space"}])
    with pytest.raises(RedshiftStatementError, match=r"rollback_stage: statement 1 of 1 FAILED") as raised:
        backend.resume(pending.state, failure_event(sid))
    assert "no space" not in str(raised.value)


# ----------------------------------------------------------------------------------- compute_readmit


def test_compute_readmit_is_one_batch_and_reads_the_last_sub_statement(backend, data_api):
    portable = [
        *sqlfiles.statements("compute_readmit/create_fact_case_summary", "duckdb"),
        *sqlfiles.statements("compute_readmit/merge_fact_case_summary", "duckdb"),
    ]
    assert len(portable) == 11  # 2 create + 9 merge; the last one selects the changed months
    params = [{"name": "facility_cd", "value": "*"}, *PARAMS]  # every facility's patients of the month
    sid = data_api.expect_batch(portable, params, f"dpc_elt.compute_readmit.{YYYYMM}")
    pending = deferred(backend.compute_readmit(YYYYMM), sid, "compute_readmit")
    assert [s["operation"] for s in data_api.sent] == ["BatchExecuteStatement"]  # nothing waited for

    data_api.expect_describe(sid)
    data_api.stubber.add_response(
        "get_statement_result",
        {"Records": [[{"stringValue": "202503"}]], "NextToken": "page-2"},
        {"Id": f"{sid}:11"},
    )
    data_api.stubber.add_response(
        "get_statement_result", {"Records": [[{"stringValue": "202505"}]]}, {"Id": f"{sid}:11", "NextToken": "page-2"}
    )
    assert backend.resume(pending.state, success_event(sid)) == ["202503", "202504", "202505"]
    data_api.assert_done()
    (batch,) = [s for s in data_api.sent if s["operation"] == "BatchExecuteStatement"]
    assert "create temp table dpc_readmit_expected as" in batch["Sqls"][3]
    assert batch["Sqls"][-1] == "select distinct yyyymm from dpc_readmit_months order by 1"


def test_a_failed_readmission_batch_fails_and_a_lost_transaction_retries(backend, data_api):
    sid = data_api.expect_batch(ANY, ANY, ANY)
    pending = backend.compute_readmit(YYYYMM)
    data_api.expect_describe(sid, status="FAILED", Error="ERROR: division by zero")
    with pytest.raises(RedshiftStatementError, match="compute_readmit: statement 1 of 1 FAILED"):
        backend.resume(pending.state, failure_event(sid))
    data_api.expect_describe(sid, status="FAILED", Error="ERROR: 1023 Serializable isolation violation")
    with pytest.raises(WarehouseBusyError):
        backend.resume(pending.state, failure_event(sid))
    data_api.expect_describe(sid, status="ABORTED")
    with pytest.raises(RedshiftStatementError, match="ABORTED"):
        backend.resume(pending.state, failure_event(sid, "ABORTED"))


# --------------------------------------------------------------------------------------- month_counts


def test_month_counts_are_one_quick_batch_of_counts_over_existing_tables(backend, data_api):
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

    assert backend.month_counts(YYYYMM) == {"raw.y1": 2210, "raw.d": 15, "mart.fact_case_summary": 120}
    data_api.assert_done()


# ---------------------------------------------------------------------------------------- export


@pytest.mark.parametrize("bad", ["2025-04", "202513", "202504' or '1'='1", 202504])
def test_a_month_that_is_not_six_digits_never_reaches_sql(backend, data_api, bad):
    from dpc_elt.backends.redshift import export

    with pytest.raises(ParameterError):
        export.unload_query(settings.SUMMARY_TABLE, bad)
    with pytest.raises(ParameterError):
        backend.export_months([YYYYMM, bad])
    assert data_api.sent == []  # not one request, not even for the good month


def parquet_bytes(tmp_path, rows: int, yyyymm: str = YYYYMM) -> bytes:
    import duckdb

    path = tmp_path / f"{yyyymm}_{rows}.parquet"
    with duckdb.connect() as con:
        con.execute(f"copy (select '{yyyymm}' as yyyymm, i as n from range({rows}) t(i)) to '{path}' (format parquet)")
    return path.read_bytes()


def unload_sql(yyyymm: str) -> str:
    return (
        f"unload ('select * from mart.fact_case_summary where yyyymm = ''{yyyymm}'' "
        "order by facility_cd, patient_id, admission_date, admission_seq_no')\n"
        f"to 's3://{BUCKET}/processed/'\n"
        f"iam_role '{ROLE_ARN}'\n"
        "format as parquet\npartition by (yyyymm) include\ncleanpath"
    )


def test_export_goes_month_by_month_each_manifest_last(backend, data_api, s3fs_, tmp_path):
    """Two months: clear → UNLOAD (deferred) → parts and rows checked → manifest → the next month."""
    months = ["202503", YYYYMM]
    parts = {m: {"0000_part_00.parquet": parquet_bytes(tmp_path, 70, m)} for m in months}
    parts[YYYYMM]["0001_part_00.parquet"] = parquet_bytes(tmp_path, 50)
    for month in months:
        s3fs_.pipe_file(f"{BUCKET}/processed/yyyymm={month}/stale_part_from_an_old_run.parquet", b"stale")
    s3fs_.pipe_file(f"{BUCKET}/processed/yyyymm=202502/0000_part_00.parquet", b"other month, untouched")

    def unload_writes_parquet(params, **_):
        """What Redshift's UNLOAD does: Parquet parts under processed/yyyymm=<M>/ — after the clear."""
        sql = params.get("Sql", "")
        if sql.startswith("unload"):
            month = next(m for m in months if f"''{m}''" in sql)
            assert not s3fs_.exists(f"{BUCKET}/processed/yyyymm={month}/stale_part_from_an_old_run.parquet")
            for name, data in parts[month].items():
                s3fs_.pipe_file(f"{BUCKET}/processed/yyyymm={month}/{name}", data)

    data_api.client.meta.events.register("provide-client-params.redshift-data.ExecuteStatement", unload_writes_parquet)

    first = data_api.expect_statement(unload_sql("202503"), None, "dpc_elt.export_parquet.202503")
    pending = deferred(backend.export_months(months), first, "export_parquet")
    assert s3fs_.exists(f"{BUCKET}/processed/yyyymm={YYYYMM}/stale_part_from_an_old_run.parquet")  # its turn comes

    data_api.expect_describe(first)
    count = data_api.expect_statement('select count(*) from "mart"."fact_case_summary" where yyyymm = :yyyymm', ANY)
    data_api.expect_describe(count)
    data_api.expect_result(count, [[70]])
    second = data_api.expect_statement(unload_sql(YYYYMM), None, f"dpc_elt.export_parquet.{YYYYMM}")
    pending = deferred(backend.resume(pending.state, success_event(first)), second, "export_parquet")
    assert s3fs_.exists(f"{BUCKET}/processed/yyyymm=202503/_manifest.json")
    assert pending.state["index"] == 1 and [m["yyyymm"] for m in pending.state["written"]] == ["202503"]

    data_api.expect_describe(second)
    count = data_api.expect_statement(ANY, PARAMS)
    data_api.expect_describe(count)
    data_api.expect_result(count, [[120]])
    written = backend.resume(pending.state, success_event(second))

    data_api.assert_done()
    assert [m["yyyymm"] for m in written] == months
    assert written[1]["uri"] == f"s3://{BUCKET}/processed/yyyymm={YYYYMM}"
    manifest = json.loads(s3fs_.cat_file(f"{BUCKET}/processed/yyyymm={YYYYMM}/_manifest.json"))
    assert manifest["yyyymm"] == YYYYMM and manifest["compression"] == "snappy"
    assert (
        manifest["files"]
        == written[1]["files"]
        == [
            {
                "table": "mart.fact_case_summary",
                "path": name,
                "rows": rows,
                "bytes": len(parts[YYYYMM][name]),
                "sha256": hashlib.sha256(parts[YYYYMM][name]).hexdigest(),
            }
            for name, rows in (("0000_part_00.parquet", 70), ("0001_part_00.parquet", 50))
        ]
    )
    assert s3fs_.cat_file(f"{BUCKET}/processed/yyyymm=202502/0000_part_00.parquet") == b"other month, untouched"


def test_export_refuses_parquet_that_does_not_hold_the_table_rows(backend, data_api, s3fs_, tmp_path):
    prefix = f"{BUCKET}/processed/yyyymm={YYYYMM}"

    def unload_writes_parquet(params, **_):
        if params.get("Sql", "").startswith("unload"):
            s3fs_.pipe_file(f"{prefix}/0000_part_00.parquet", parquet_bytes(tmp_path, 119))

    data_api.client.meta.events.register("provide-client-params.redshift-data.ExecuteStatement", unload_writes_parquet)
    sid = data_api.expect_statement(ANY, None, ANY)
    pending = backend.export_months([YYYYMM])
    data_api.expect_describe(sid)
    count = data_api.expect_statement(ANY, PARAMS)
    data_api.expect_describe(count)
    data_api.expect_result(count, [[120]])

    with pytest.raises(RuntimeError, match="hold 119 rows, fact_case_summary has 120"):
        backend.resume(pending.state, success_event(sid))
    assert not s3fs_.exists(f"{prefix}/_manifest.json")


def test_a_failed_unload_fails_the_export_and_writes_no_manifest(backend, data_api, s3fs_):
    sid = data_api.expect_statement(ANY, None, ANY)
    pending = backend.export_months([YYYYMM])
    data_api.expect_describe(sid, status="FAILED", Error="ERROR: S3ServiceException: Access Denied")
    with pytest.raises(RedshiftStatementError, match="export_parquet: statement 1 of 1 FAILED"):
        backend.resume(pending.state, failure_event(sid))
    data_api.assert_done()
    assert not s3fs_.exists(f"{BUCKET}/processed/yyyymm={YYYYMM}/_manifest.json")


def test_no_month_to_export_sends_nothing(backend, data_api):
    assert backend.export_months([]) == []
    assert data_api.sent == []


def test_an_unknown_step_cannot_be_resumed(backend):
    with pytest.raises(ValueError, match="nothing to resume"):
        backend.resume({"step": "dbt_tests", "statement_id": "x"}, None)
