"""The quality report on the production backend: its queries are one Data API batch with the month
bound (Stubber checks every request), the rows become the same report as on the embedded default,
and the page lands next to the export on (moto) S3 through the AWS connection, overwritten on a re-run."""

from __future__ import annotations

from botocore.stub import ANY

from dpc_elt.core import sqlfiles
from dpc_elt.core.quality_queries import queries
from dpc_elt.ops import quality_report
from dpc_elt.ops.quality_report import REPORT_NAME
from tests.production.conftest import BUCKET
from tests.production.support import PARAMS, YYYYMM, expect_existing_tables

ROWS = {
    "file:y1": [["FF1_131000123_2504.txt", 210]],
    "file:ef_in": [["EFn_131000123_2504.txt", 3000]],
    "file:d": [["Dn_131000123_2504.txt", 800]],
    "facilities": [["131000123", 40, 2, 6], ["131000456", 4, 1, 1]],
    "mdcs": [["04", 30, 2, 3], ["05", 10, 0, 3], [None, 4, 1, 1]],
    "warnings": [[1]],
}


def expect_report_batch(stub) -> None:
    sqls = [" ".join(sqlfiles.statements(q.name, "redshift", **q.identifiers)) for q in queries()]
    assert '"raw"."y1"' in sqls[0] and all(":yyyymm" in s for s in sqls)  # identifiers rendered, month bound
    sid = stub.expect_batch(
        [s for q in queries() for s in sqlfiles.statements(q.name, "redshift", **q.identifiers)],
        PARAMS,
        f"dpc_elt.quality_report.{YYYYMM}",
    )
    stub.expect_describe(sid)
    for n, q in enumerate(queries(), start=1):
        stub.expect_result(f"{sid}:{n}", ROWS[q.key])


def expect_month_counts(stub) -> None:
    expect_existing_tables(stub, [("raw", "y1"), ("mart", "fact_case_summary")])
    sid = stub.expect_batch(
        [
            'select count(*) from "raw"."y1" where yyyymm = :yyyymm',
            'select count(*) from "mart"."fact_case_summary" where yyyymm = :yyyymm',
        ],
        PARAMS,
        ANY,
    )
    stub.expect_describe(sid)
    stub.expect_result(f"{sid}:1", [[210]])
    stub.expect_result(f"{sid}:2", [[44]])


def test_quality_report_rows_are_one_batch_with_the_month_bound(data_api, backend):
    expect_report_batch(data_api)
    assert backend.quality_report_rows(YYYYMM) == ROWS
    data_api.assert_done()
    (batch,) = [s for s in data_api.sent if s["operation"] == "BatchExecuteStatement"]
    assert batch["Parameters"] == PARAMS and all(YYYYMM not in sql for sql in batch["Sqls"])


def test_the_report_is_written_next_to_the_export_on_s3_and_overwritten(data_api, cfg, s3fs_):
    prefix = f"{BUCKET}/processed/yyyymm={YYYYMM}"
    s3fs_.pipe_file(f"{prefix}/{REPORT_NAME}", b"stale")
    expect_report_batch(data_api)
    expect_month_counts(data_api)
    uri = quality_report.write_report(YYYYMM, cfg)
    data_api.assert_done()
    assert uri == f"s3://{prefix}/{REPORT_NAME}"
    s3fs_.invalidate_cache()
    page = s3fs_.cat_file(f"{prefix}/{REPORT_NAME}").decode("utf-8")
    assert "FF1_131000123_2504.txt" in page and "mart.fact_case_summary" in page
    assert '<td>131000123</td><td class="num">40</td><td class="num">5.0 %</td><td class="num">15.0 %</td>' in page
    assert '<td>131000456</td><td class="num">&lt;10</td><td class="num">—</td>' in page
    assert '<td>(no MDC)</td><td class="num">&lt;10</td>' in page
    assert "1 case(s) of this month" in page
