"""copy_raw on Redshift: every file is staged as UTF-8 on (moto) S3, then ONE Data API batch — one
transaction — deletes the month from all three raw tables and COPYs it back (botocore Stubber, checked
against the service model, every request recorded). The step defers on the provider's trigger; its
resume counts the loaded rows, or explains a rejected line from SYS_LOAD_ERROR_DETAIL without a value."""

from __future__ import annotations

import json
import logging
from unittest import mock

import pytest
from botocore.stub import ANY

from dpc_elt.backends.base import Pending
from dpc_elt.backends.redshift import load
from dpc_elt.backends.redshift.data_api import MAX_BATCH_STATEMENTS, POLL_SECONDS, RedshiftStatementError
from dpc_elt.core import copy_errors, formats
from dpc_elt.core.errors import RawFileError, WarehouseBusyError
from dpc_elt.orchestration.retry import COPY_RAW_RETRY
from tests.dpc_elt.conftest import Dpc
from tests.production.conftest import BUCKET, CONN_ID, RedshiftDataStub, sqls_sent, task_context
from tests.production.support import (
    PARAMS,
    PATIENT_VALUE,
    STAGING,
    YYYYMM,
    failure_event,
    file_type_statements,
    land_month,
    load_statements,
    production_dag,
    success_event,
)

D_FILE = "Dn_131000123_2504.txt"
RECORDS = {"y1": 3, "ef_in": 2, "d": 3}
COPY_POSITIONS = {"y1": 4, "ef_in": 8, "d": 12}  # create schema, create table, delete, copy — per file type


def delivery():
    """The default month, with three D lines (no header: staged line n is source line n)."""
    dpc = Dpc()
    files = dpc.default_files()
    files[2] = dpc.file("d", [dpc.row("d", order_no=str(n)) for n in (1, 2, 3)], header=False)
    return files


@pytest.fixture
def manifest(aws, cfg, s3fs_, backend):
    land_month(s3fs_, delivery())
    return backend.validate_month(YYYYMM)


@pytest.fixture
def logged():
    """Every log record of the run (dpc_elt, airflow, botocore), to check that no value leaks."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    root = logging.getLogger()
    handler, previous = Collect(level=logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(previous)


def submitted(backend, data_api, manifest) -> tuple[Pending, str]:
    sid = data_api.expect_batch(load_statements(), PARAMS, f"dpc_elt.copy_raw.{YYYYMM}")
    pending = backend.load_month(YYYYMM, manifest)
    assert isinstance(pending, Pending)
    return pending, sid


def finished(stub: RedshiftDataStub, sid: str, rows: dict[str, int] | None = None) -> None:
    rows = RECORDS if rows is None else rows
    subs = [{"Status": "FINISHED"} for _ in range(12)]
    for file_type, position in COPY_POSITIONS.items():
        subs[position - 1] = {"Status": "FINISHED", "ResultRows": rows[file_type]}
    stub.expect_describe(sid, subs=subs)


def failed_at(stub: RedshiftDataStub, sid: str, position: int, error: str, **failed_fields) -> None:
    """DescribeStatement of the batch after sub-statement ``position`` failed: those before it had
    finished, those after it never ran, and the transaction rolled back."""
    subs = [{"Status": "FINISHED"} for _ in range(position - 1)]
    subs.append({"Status": "FAILED", "Error": error, **failed_fields})
    subs += [{"Status": "ABORTED"} for _ in range(12 - position)]
    stub.expect_describe(sid, status="FAILED", subs=subs, Error=error)


def load_error_lookup(stub: RedshiftDataStub, rows: list[list]) -> None:
    lookup = stub.expect_statement(
        ANY,
        [
            {"name": "query_id", "value": "4242"},
            {"name": "since", "value": ANY},
            {"name": "staged_prefix", "value": f"{STAGING}/%"},
        ],
        f"dpc_elt.copy_raw.load_errors.{YYYYMM}",
    )
    stub.expect_describe(lookup)
    stub.expect_result(lookup, rows)


D_REJECTED = [f"{STAGING}/{D_FILE}.tsv", 2, "item_name", 1204]
COPY_FAILED = f"ERROR: Load into table 'd' failed. Check 'sys_load_error_detail' for details. {PATIENT_VALUE}"


# ------------------------------------------------------------------------------------------ staging


def test_staging_writes_utf8_and_one_copy_manifest_per_file_type(manifest, backend, s3fs_):
    staged = load.stage_month(s3fs_, backend.where, YYYYMM, manifest)
    files = {f["source_file"]: f for f in staged["files"]}
    assert staged["yyyymm"] == YYYYMM and set(files) == {f.path for f in delivery()}
    y1 = files["FF1_131000123_2504.txt"]
    assert (y1["records"], y1["first_line_no"], y1["staged_uri"]) == (3, 2, f"{STAGING}/FF1_131000123_2504.txt.tsv")
    assert files[D_FILE]["first_line_no"] == 1  # no header in the D fixture
    text = s3fs_.cat_file(f"{BUCKET}/staging/yyyymm={YYYYMM}/FF1_131000123_2504.txt.tsv").decode("utf-8")
    assert "心不全" in text and "\r" not in text
    assert set(staged["copy_manifests"]) == {"y1", "ef_in", "d"}
    copy_manifest = json.loads(s3fs_.cat_file(staged["copy_manifests"]["ef_in"][len("s3://") :]))
    assert copy_manifest == {"entries": [{"url": f"{STAGING}/EFn_131000123_2504.txt.tsv", "mandatory": True}]}


def test_a_bad_line_fails_the_step_before_any_sql_naming_file_and_line(aws, cfg, s3fs_, data_api):
    """Through the DAG's copy_raw task: the CopyErrorCount line is logged once, nothing is sent."""
    dpc = Dpc()
    files = dpc.default_files()
    files[1] = dpc.file("ef_in", [dpc.row("ef_in"), dpc.row("ef_in", order_no="2", performed_date="20250431")])
    land_month(s3fs_, files)
    from dpc_elt.backends import get_backend

    checked = {"yyyymm": YYYYMM, "manifest": get_backend().validate_month(YYYYMM).to_dict()}
    context = task_context()
    context["ti"].xcoms[("validate_manifest.check_manifest", "return_value")] = checked
    task = production_dag().get_task("copy_raw")

    with (
        mock.patch.object(copy_errors, "report_copy_error", wraps=copy_errors.report_copy_error) as reported,
        pytest.raises(RawFileError, match=r"EFn_131000123_2504.txt:3: impossible date"),
    ):
        task.execute(context)
    reported.assert_called_once_with("EFn_131000123_2504.txt", 3)
    assert data_api.sent == []
    s3fs_.invalidate_cache()
    assert not s3fs_.exists(f"{BUCKET}/staging/yyyymm={YYYYMM}/EFn_131000123_2504.txt.tsv")
    assert not s3fs_.exists(f"{BUCKET}/staging/yyyymm={YYYYMM}/_copy_ef_in.manifest")


# ------------------------------------------------------------------------------ one batch, deferred


def test_the_month_is_one_batch_with_every_delete_and_copy_and_the_month_bound(manifest, backend, data_api):
    from airflow.providers.amazon.aws.triggers.redshift_data import RedshiftDataTrigger

    pending, sid = submitted(backend, data_api, manifest)

    (request,) = data_api.sent
    assert request["operation"] == "BatchExecuteStatement" and request["Parameters"] == PARAMS
    sqls = request["Sqls"]
    assert len(sqls) == 12 <= MAX_BATCH_STATEMENTS
    assert [s for s in sqls if s.startswith("delete")] == [
        f'delete from "raw"."{formats.LAYOUTS[t].raw_table}" where yyyymm = :yyyymm' for t in formats.FILE_TYPES
    ]
    assert [s.split("\n", 1)[0].split(" (", 1)[0] for s in sqls if s.startswith("copy")] == [
        'copy "raw"."y1"',
        'copy "raw"."ef_in"',
        'copy "raw"."d"',
    ]
    assert all(YYYYMM not in s.split("from", 1)[0] for s in sqls)  # the month is bound, never written in
    trigger = pending.trigger
    assert isinstance(trigger, RedshiftDataTrigger) and pending.step == "copy_raw"
    assert (trigger.statement_id, trigger.poll_interval, trigger.aws_conn_id) == (sid, POLL_SECONDS, CONN_ID)
    assert json.loads(json.dumps(pending.state)) == pending.state  # it travels through the triggerer
    assert pending.state["copies"] == [
        {"file_type": t, "position": COPY_POSITIONS[t], "rows": RECORDS[t]} for t in RECORDS
    ]


def test_copy_refreshes_statistics_inside_the_load_transaction(manifest, backend, data_api):
    submitted(backend, data_api, manifest)
    sqls = data_api.sent[0]["Sqls"]
    copies = [s for s in sqls if s.startswith("copy")]
    assert len(copies) == 3 and all(s.endswith("statupdate on") for s in copies)
    assert not [s for s in sqls if s.startswith("analyze") or "statupdate off" in s]


def test_resume_counts_the_rows_each_copy_loaded(manifest, backend, data_api):
    pending, sid = submitted(backend, data_api, manifest)
    finished(data_api, sid)
    assert backend.resume(pending.state, success_event(sid)) == RECORDS
    data_api.assert_done()
    assert [s["operation"] for s in data_api.sent] == ["BatchExecuteStatement", "DescribeStatement"]


def test_a_copy_that_loaded_other_rows_than_staged_fails_the_step(manifest, backend, data_api):
    pending, sid = submitted(backend, data_api, manifest)
    finished(data_api, sid, {**RECORDS, "ef_in": 1})
    with pytest.raises(RedshiftStatementError, match="COPY of ef_in loaded 1 rows, 2 were staged"):
        backend.resume(pending.state, success_event(sid))


def test_a_file_type_missing_from_the_delivery_empties_its_month_without_copy(aws, cfg, s3fs_, data_api, backend):
    land_month(s3fs_, [f for f in delivery() if f.file_type != "d"])
    manifest = backend.validate_month(YYYYMM)
    sid = data_api.expect_batch(load_statements(without=("d",)), PARAMS, ANY)
    pending = backend.load_month(YYYYMM, manifest)
    assert [c["file_type"] for c in pending.state["copies"]] == ["y1", "ef_in"]
    subs = [{"Status": "FINISHED"} for _ in range(11)]
    subs[3], subs[7] = {"Status": "FINISHED", "ResultRows": 3}, {"Status": "FINISHED", "ResultRows": 2}
    data_api.expect_describe(sid, subs=subs)
    assert backend.resume(pending.state, success_event(sid)) == {"y1": 3, "ef_in": 2, "d": 0}
    data_api.assert_done()


# ---------------------------------------------------------------------------- all or nothing


def test_a_rejected_line_in_the_third_copy_leaves_every_raw_table_as_it_was(manifest, backend, data_api, logged):
    """Redshift runs the statements of one BatchExecuteStatement as ONE transaction: when the COPY of D
    (statement 12) fails, the DELETEs and COPYs of y1 and ef_in before it roll back with it. So after
    the one batch, the step only reads SYS_LOAD_ERROR_DETAIL and fails: no second batch, no DELETE or
    COPY on its own — the first two tables are untouched because their changes were never committed."""
    pending, sid = submitted(backend, data_api, manifest)
    failed_at(data_api, sid, 12, COPY_FAILED, QueryString='copy "raw"."d" (...)', RedshiftQueryId=4242)
    load_error_lookup(data_api, [D_REJECTED])

    with pytest.raises(RawFileError) as raised:
        backend.resume(pending.state, failure_event(sid))

    data_api.assert_done()
    error = raised.value
    assert (error.file, error.line) == (D_FILE, 2)
    assert str(error) == (
        f"{D_FILE}:2: COPY rejected the line: value longer than the column allows (bytes) "
        "(column item_name, load error 1204)"
    )
    assert [s["operation"] for s in data_api.sent] == [
        "BatchExecuteStatement",
        "DescribeStatement",
        "ExecuteStatement",
        "DescribeStatement",
        "GetStatementResult",
    ]
    sqls = sqls_sent(data_api)
    assert sqls[:12] == load_statements() and len(sqls) == 13
    lookup = sqls[12].lower()
    assert "from sys_load_error_detail" in lookup
    assert "error_message" not in lookup.split("from sys_load_error_detail")[0]  # never the rejected value
    assert not any(PATIENT_VALUE in text for text in [str(error), *logged])


def test_the_operator_defers_on_the_batch_and_reports_the_rejected_line(manifest, backend, data_api):
    """Through the DAG's copy_raw task, as the triggerer drives it: execute defers, the trigger's failure
    event resumes it, the error names the D file and line and the CopyErrorCount line is logged once."""
    from airflow.providers.amazon.aws.triggers.redshift_data import RedshiftDataTrigger
    from airflow.sdk.exceptions import TaskDeferred

    from dpc_elt.orchestration.steps import CopyRawOperator

    task = production_dag().get_task("copy_raw")
    assert isinstance(task, CopyRawOperator)
    context = task_context()
    checked = {"yyyymm": YYYYMM, "manifest": manifest.to_dict()}
    context["ti"].xcoms[("validate_manifest.check_manifest", "return_value")] = checked
    sid = data_api.expect_batch(load_statements(), PARAMS, ANY)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context)
    assert isinstance(deferred.value.trigger, RedshiftDataTrigger) and deferred.value.trigger.statement_id == sid
    assert deferred.value.method_name == "resume_step"
    state = deferred.value.kwargs["pending"]

    failed_at(data_api, sid, 12, COPY_FAILED, QueryString='copy "raw"."d" (...)', RedshiftQueryId=4242)
    load_error_lookup(data_api, [D_REJECTED])
    with (
        mock.patch.object(copy_errors, "report_copy_error", wraps=copy_errors.report_copy_error) as reported,
        pytest.raises(RawFileError, match=f"{D_FILE}:2: COPY rejected"),
    ):
        task.resume_step(context, event=failure_event(sid), pending=state)
    reported.assert_called_once_with(D_FILE, 2)

    resumed = production_dag().get_task("copy_raw")  # a fresh instance, as after a deferral
    finished(data_api, sid)
    assert resumed.resume_step(context, event=success_event(sid), pending=state) == RECORDS
    data_api.assert_done()


def test_a_failed_batch_without_load_errors_is_not_blamed_on_a_file(manifest, backend, data_api, logged):
    pending, sid = submitted(backend, data_api, manifest)
    failed_at(data_api, sid, 12, COPY_FAILED, RedshiftQueryId=4242)
    load_error_lookup(data_api, [])
    with pytest.raises(RedshiftStatementError, match=f"copy_raw: statement 12 of 12 FAILED \\({sid}\\)") as raised:
        backend.resume(pending.state, failure_event(sid))
    assert PATIENT_VALUE not in str(raised.value) and not any(PATIENT_VALUE in line for line in logged)
    policy = COPY_RAW_RETRY["retry_policy"]
    assert policy.evaluate(raised.value, 1, 5).action.value == "fail"


def test_a_failed_delete_is_a_statement_error_without_a_lookup(manifest, backend, data_api):
    pending, sid = submitted(backend, data_api, manifest)
    failed_at(data_api, sid, 7, f"ERROR: permission denied {PATIENT_VALUE}")
    with pytest.raises(RedshiftStatementError, match="statement 7 of 12 FAILED"):
        backend.resume(pending.state, failure_event(sid))
    data_api.assert_done()
    assert [s["operation"] for s in data_api.sent] == ["BatchExecuteStatement", "DescribeStatement"]


def test_a_lost_concurrent_transaction_is_retried(manifest, backend, data_api):
    pending, sid = submitted(backend, data_api, manifest)
    failed_at(data_api, sid, 3, "ERROR: 1023 DETAIL: Serializable isolation violation on table")
    with pytest.raises(WarehouseBusyError, match="concurrent transaction") as raised:
        backend.resume(pending.state, failure_event(sid))
    assert COPY_RAW_RETRY["retry_policy"].evaluate(raised.value, 1, 5).action.value == "retry"


@pytest.mark.parametrize("code", ["ThrottlingException", "ActiveStatementsExceededException"])
def test_throttling_on_submit_becomes_a_retried_warehouse_busy_error(manifest, backend, data_api, code):
    data_api.stubber.add_client_error("batch_execute_statement", service_error_code=code, http_status_code=400)
    with pytest.raises(WarehouseBusyError, match=code) as raised:
        backend.load_month(YYYYMM, manifest)
    assert COPY_RAW_RETRY["retry_policy"].evaluate(raised.value, 1, 5).action.value == "retry"


def test_a_statement_still_running_after_a_triggerer_error_is_waited_for_again(manifest, backend, data_api):
    pending, sid = submitted(backend, data_api, manifest)
    data_api.expect_describe(sid, status="STARTED")
    again = backend.resume(pending.state, {"status": "error", "statement_id": sid, "message": "throttled"})
    assert isinstance(again, Pending) and again.state == pending.state and again.trigger.statement_id == sid


def test_an_event_for_another_statement_is_refused(manifest, backend, data_api):
    pending, _ = submitted(backend, data_api, manifest)
    with pytest.raises(RuntimeError, match="another statement"):
        backend.resume(pending.state, success_event("11111111-2222-4333-8444-555555555555"))


def test_one_file_types_part_is_create_delete_copy():
    assert file_type_statements("d")[2] == 'delete from "raw"."d" where yyyymm = :yyyymm'
    batch, with_copy = load.copy_statements("d", f"{STAGING}/_copy_d.manifest", "arn:aws:iam::123456789012:role/r")
    assert with_copy and len(batch.statements) == 4 and batch.bound == {"yyyymm"}
    with pytest.raises(ValueError):
        load.copy_statements("d", "s3://dpc-test-bucket/staging/it's.manifest", "arn:aws:iam::123456789012:role/r")


def test_a_failed_load_error_lookup_still_fails_the_step_on_the_copy(manifest, backend, data_api):
    pending, sid = submitted(backend, data_api, manifest)
    failed_at(data_api, sid, 12, COPY_FAILED, RedshiftQueryId=4242)
    data_api.stubber.add_client_error("execute_statement", service_error_code="ValidationException")
    with pytest.raises(RedshiftStatementError, match="copy_raw: statement 12 of 12 FAILED"):
        backend.resume(pending.state, failure_event(sid))
