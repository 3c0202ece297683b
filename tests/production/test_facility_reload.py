"""A one-facility reload on Redshift (issue 16 §1), every Data API request checked (botocore Stubber, moto
S3): only that facility's files are validated and staged, the ONE load batch deletes that facility's rows
of the month (bound, never written into the SQL) before COPYing its files, rollback_stage and
compute_readmit are narrowed to it, and every statement parses as Redshift SQL."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY

from dpc_elt.backends.base import Pending
from dpc_elt.backends.redshift.data_api import sql_batch
from dpc_elt.core import formats, settings
from dpc_elt.core.errors import ManifestError
from dpc_elt.core.manifest import RULE_FILE_MISSING
from tests.dpc_elt.conftest import Dpc
from tests.production.conftest import BUCKET
from tests.production.support import STAGING, YYYYMM, expect_existing_tables, file_type_statements, land_month
from tests.production.test_sql import parses_as_redshift

OURS = Dpc.facility
OTHER = "271000456"
FACILITY_PARAMS = [{"name": "facility_cd", "value": OURS}, {"name": "yyyymm", "value": YYYYMM}]
FACILITY_DELETE = "where yyyymm = :yyyymm and facility_cd = :facility_cd"


@pytest.fixture
def resubmitted(aws, cfg, s3fs_, backend):
    """A month whose manifest lists two facilities; only ours brought its files (the resubmission)."""
    dpc = Dpc()
    ours = dpc.default_files()
    others = [dpc.file("y1", [dpc.row("y1", facility_cd=OTHER)], facility_cd=OTHER)]
    land_month(s3fs_, ours + others)
    for item in others:
        s3fs_.rm(f"{BUCKET}/raw/yyyymm={YYYYMM}/{item.path}")
    return backend.validate_month(YYYYMM, OURS)


def facility_statements(file_type: str) -> list[str]:
    """The whole-month part of one file type, with the DELETE narrowed to the facility."""
    whole = file_type_statements(file_type)
    return [s.replace("where yyyymm = :yyyymm", FACILITY_DELETE) if s.startswith("delete") else s for s in whole]


def test_only_the_facilitys_files_are_validated_on_s3(resubmitted, backend):
    assert resubmitted.facility_cd == OURS
    assert {f.facility_cd for f in resubmitted.files} == {OURS} and len(resubmitted.files) == 3
    with pytest.raises(ManifestError, match=RULE_FILE_MISSING):  # the whole month still needs every file
        backend.validate_month(YYYYMM)


def test_the_load_batch_deletes_only_the_facilitys_rows_and_copies_its_files(resubmitted, backend, data_api, s3fs_):
    expected = [s for t in formats.FILE_TYPES for s in facility_statements(t)]
    sid = data_api.expect_batch(expected, FACILITY_PARAMS, f"dpc_elt.copy_raw.{YYYYMM}")
    pending = backend.load_month(YYYYMM, resubmitted)
    assert isinstance(pending, Pending) and pending.state["statement_id"] == sid
    data_api.assert_done()
    (request,) = data_api.sent
    assert all(OURS not in sql and YYYYMM not in sql.split("from", 1)[0] for sql in request["Sqls"])
    parses_as_redshift(request["Sqls"])
    for file_type in formats.FILE_TYPES:
        copy_manifest = json.loads(s3fs_.cat_file(f"{STAGING.removeprefix('s3://')}/_copy_{file_type}.manifest"))
        staged = [entry["url"].rsplit("/", 1)[1] for entry in copy_manifest["entries"]]
        assert staged and all(f"_{OURS}_" in name for name in staged), staged


def test_rollback_and_readmission_are_narrowed_to_the_facility(backend, data_api):
    expect_existing_tables(data_api, [("stage", "stg_dpc__y1_cases"), ("stage", "stg_dpc__d")])
    data_api.expect_batch(
        [
            f'delete from "stage"."stg_dpc__y1_cases" {FACILITY_DELETE}',
            f'delete from "stage"."stg_dpc__d" {FACILITY_DELETE}',
        ],
        FACILITY_PARAMS,
        f"dpc_elt.rollback_stage.{YYYYMM}",
    )
    assert isinstance(backend.rollback_stage(YYYYMM, OURS), Pending)
    data_api.expect_batch(ANY, FACILITY_PARAMS, f"dpc_elt.compute_readmit.{YYYYMM}")
    assert isinstance(backend.compute_readmit(YYYYMM, OURS), Pending)
    data_api.assert_done()
    readmit = data_api.sent[-1]["Sqls"]
    assert sum("(:facility_cd = '*' or facility_cd = :facility_cd)" in sql for sql in readmit) == 1


def test_the_facility_sql_parses_as_redshift_and_binds_the_month_and_the_facility():
    for name in ("shared/delete_facility_month", "shared/count_facility_month"):
        batch = sql_batch(name, schema=settings.STAGE_SCHEMA, table="stg_dpc__d")
        assert batch.bound == {"yyyymm", "facility_cd"}
        parses_as_redshift(batch.statements)


def test_redshift_tables_are_named_by_dbts_endpoint_for_openlineage(cfg, backend):
    cfg.redshift_host, cfg.redshift_port = "dpc-elt.123456789012.ap-northeast-1.redshift-serverless.amazonaws.com", 5439
    namespace, name = backend.table_dataset("mart", "fact_case_summary")
    assert namespace == f"redshift://{cfg.redshift_host}:5439"
    assert name == f"{backend.where.database}.mart.fact_case_summary"
