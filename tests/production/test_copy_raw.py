"""copy_raw on Redshift: ``transcode`` stages UTF-8 on (moto) S3, then one Data API batch per file type
sends exactly the expected statements (botocore Stubber, checked against the service model); a failed
COPY is explained from SYS_LOAD_ERROR_DETAIL as a RawFileError, and that notice reaches SNS."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from botocore.stub import ANY

from dpc_elt import formats, production, steps
from dpc_elt.errors import RawFileError, WarehouseBusyError
from tests.dpc_elt.conftest import Dpc
from tests.production.conftest import BUCKET, DATABASE, ROLE_ARN, WORKGROUP, RedshiftDataStub, task_context
from tests.production.support import YYYYMM, land_month, production_dag

STAGING = f"s3://{BUCKET}/staging/yyyymm={YYYYMM}"
PARAMS = [{"name": "yyyymm", "value": YYYYMM}]


def expected_statements(file_type: str, with_copy: bool = True) -> list[str]:
    """The batch written out by hand from the issue: create if missing, DELETE the month, COPY."""
    layout = formats.LAYOUTS[file_type]
    table = f'"raw"."{layout.raw_table}"'
    columns = ",\n".join(f"    {c} varchar(1536)" for c in layout.columns)
    create = (
        f"create table if not exists {table} (\n    yyyymm varchar(6) not null,\n"
        f"    source_file varchar(64) not null,\n    line_no integer not null,\n{columns}\n)\n"
        "diststyle auto\nsortkey (yyyymm)"
    )
    statements = ['create schema if not exists "raw"', create, f"delete from {table} where yyyymm = :yyyymm"]
    if with_copy:
        statements.append(
            f"copy {table} (yyyymm, source_file, line_no, {', '.join(layout.columns)})\n"
            f"from '{STAGING}/_copy_{file_type}.manifest'\n"
            f"iam_role '{ROLE_ARN}'\n"
            "manifest\ndelimiter '\\t'\nnull as '\\0'\nencoding utf8\nmaxerror 0\ncompupdate off\nstatupdate off"
        )
    return statements


@pytest.fixture
def dag(aws, cfg):
    return production_dag()


@pytest.fixture
def staged(aws, cfg, s3fs_):
    """The default month landed and validated on S3, then transcoded: what copy_raw.transcode returns."""
    land_month(s3fs_)
    manifest = production.validate_month_on_s3(YYYYMM, cfg)
    return production.stage_month(YYYYMM, manifest, cfg)


def test_a_bad_line_fails_transcode_with_file_and_line_and_loads_nothing(dag, aws, cfg, s3fs_):
    from dpc_elt import operations

    dpc = Dpc()
    files = dpc.default_files()
    files[1] = dpc.file("ef_in", [dpc.row("ef_in"), dpc.row("ef_in", order_no="2", performed_date="20250431")])
    land_month(s3fs_, files)
    context = task_context()
    checked = {"yyyymm": YYYYMM, "manifest": production.validate_month_on_s3(YYYYMM, cfg).to_dict()}
    context["ti"].xcoms[(production.CHECK_MANIFEST_TASK_ID, "return_value")] = checked
    transcode = dag.get_task("copy_raw.transcode")

    with (
        mock.patch.object(operations, "report_copy_error", wraps=operations.report_copy_error) as reported,
        pytest.raises(RawFileError, match=r"EFn_131000123_2504.txt:3: impossible date"),
    ):
        transcode.python_callable(**context)
    reported.assert_called_once_with("EFn_131000123_2504.txt", 3)
    s3fs_.invalidate_cache()
    assert not s3fs_.exists(f"{BUCKET}/staging/yyyymm={YYYYMM}/EFn_131000123_2504.txt.tsv")
    assert not s3fs_.exists(f"{BUCKET}/staging/yyyymm={YYYYMM}/_copy_ef_in.manifest")


def operator(dag, file_type: str, staged_result):
    op = dag.get_task(f"copy_raw.load_{file_type}")
    context = task_context()
    context["ti"].xcoms[(production.TRANSCODE_TASK_ID, "return_value")] = staged_result
    stub = RedshiftDataStub(op.hook.conn)
    return op, context, stub


def test_the_groups_have_the_asl_ids_retries_and_deferrable_operators(dag):
    from airflow.providers.amazon.aws.operators.redshift_data import RedshiftDataOperator
    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

    ids = [t.task_id for t in dag.topological_sort()]
    assert ids == [
        "validate_manifest.wait_for_manifest",
        "validate_manifest.check_manifest",
        "copy_raw.transcode",
        "copy_raw.load_y1",
        "copy_raw.load_ef_in",
        "copy_raw.load_d",
    ]
    sensor = dag.get_task("validate_manifest.wait_for_manifest")
    assert isinstance(sensor, S3KeySensor) and sensor.deferrable and sensor.aws_conn_id == "dpc_aws"
    for task in dag.tasks:
        retry = steps.VALIDATE_MANIFEST_RETRY if task.task_id.startswith("validate") else steps.COPY_RAW_RETRY
        assert (task.retries, task.retry_delay) == (retry["retries"], retry["retry_delay"])
        assert task.retry_exponential_backoff == retry["retry_exponential_backoff"] and task.retry_policy
    for file_type in formats.FILE_TYPES:
        op = dag.get_task(f"copy_raw.load_{file_type}")
        assert isinstance(op, RedshiftDataOperator)
        assert (op.workgroup_name, op.database, op.aws_conn_id) == (WORKGROUP, DATABASE, "dpc_aws")
        assert op.deferrable and op.durable and op.pool == "dpc_warehouse" and op.cluster_identifier is None
    # Retry only throttling / Data API errors, never bad input (the ASL's CopyRaw.Retry).
    policy = steps.COPY_RAW_RETRY["retry_policy"]
    assert policy.evaluate(WarehouseBusyError("throttled"), 1, 5).action.value == "retry"
    assert policy.evaluate(RawFileError("f", "r", line=1), 1, 5).action.value == "fail"
    assert policy.evaluate(production.RedshiftStatementError("x"), 1, 5).action.value == "fail"


def test_building_the_groups_looks_up_no_connection(aws, cfg):
    with mock.patch("airflow.sdk.bases.hook.BaseHook.get_connection", side_effect=AssertionError("lookup")):
        production_dag()


def test_a_misconfigured_deployment_fails_at_parse_naming_the_setting(aws, cfg, monkeypatch):
    monkeypatch.setattr(cfg, "redshift_iam_role_arn", "arn:aws:iam::123:role/x' --")
    with pytest.raises(ValueError, match="DPC_REDSHIFT_IAM_ROLE_ARN"):
        production_dag()


def test_transcode_stages_utf8_and_one_copy_manifest_per_file_type(staged, s3fs_):
    files = {f["source_file"]: f for f in staged["files"]}
    assert staged["yyyymm"] == YYYYMM and set(files) == {f.path for f in Dpc().default_files()}
    y1 = files["FF1_131000123_2504.txt"]
    assert (y1["records"], y1["first_line_no"], y1["staged_uri"]) == (3, 2, f"{STAGING}/FF1_131000123_2504.txt.tsv")
    assert files["Dn_131000123_2504.txt"]["first_line_no"] == 1  # no header in the D fixture
    text = s3fs_.cat_file(f"{BUCKET}/staging/yyyymm={YYYYMM}/FF1_131000123_2504.txt.tsv").decode("utf-8")
    assert "心不全" in text and "\r" not in text
    assert set(staged["copy_manifests"]) == {"y1", "ef_in", "d"}
    copy_manifest = json.loads(s3fs_.cat_file(staged["copy_manifests"]["ef_in"][len("s3://") :]))
    assert copy_manifest == {"entries": [{"url": f"{STAGING}/EFn_131000123_2504.txt.tsv", "mandatory": True}]}


def test_each_file_type_is_one_batch_with_exactly_the_expected_requests(dag, staged):
    records = {f["file_type"]: f["records"] for f in staged["files"]}
    for file_type in formats.FILE_TYPES:
        op, context, stub = operator(dag, file_type, staged)
        sid = stub.expect_batch(expected_statements(file_type), PARAMS, f"dpc_elt.copy_raw.{file_type}.{YYYYMM}")
        stub.expect_describe(sid)  # finished at once: no deferral
        subs = [{"Status": "FINISHED"}] * 3 + [{"Status": "FINISHED", "ResultRows": records[file_type]}]
        stub.expect_describe(sid, subs=subs)
        result = op.execute(context)
        stub.assert_done()
        assert result == {"file_type": file_type, "rows": records[file_type], "statement_id": sid}
        assert [s["operation"] for s in stub.sent] == [
            "BatchExecuteStatement",
            "DescribeStatement",
            "DescribeStatement",
        ]


def test_a_file_type_missing_from_the_delivery_empties_its_month_without_copy(dag, aws, cfg, s3fs_):
    land_month(s3fs_, [f for f in Dpc().default_files() if f.file_type != "d"])
    staged = production.stage_month(YYYYMM, production.validate_month_on_s3(YYYYMM, cfg), cfg)
    assert "d" not in staged["copy_manifests"]
    op, context, stub = operator(dag, "d", staged)
    sid = stub.expect_batch(expected_statements("d", with_copy=False), PARAMS, ANY)
    stub.expect_describe(sid)
    stub.expect_describe(sid, subs=[{"Status": "FINISHED"}] * 3)
    assert op.execute(context)["rows"] == 0
    stub.assert_done()


def test_a_running_batch_defers_and_resumes_from_the_trigger(dag, staged):
    from airflow.providers.amazon.aws.triggers.redshift_data import RedshiftDataTrigger
    from airflow.sdk.exceptions import TaskDeferred

    op, context, stub = operator(dag, "ef_in", staged)
    sid = stub.expect_batch(expected_statements("ef_in"), PARAMS, ANY)
    stub.expect_describe(sid, status="STARTED")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert isinstance(deferred.value.trigger, RedshiftDataTrigger)
    assert deferred.value.trigger.statement_id == sid and deferred.value.method_name == "execute_complete"

    resumed, context, stub = operator(production_dag(), "ef_in", staged)  # a fresh instance, as after deferral
    stub.expect_describe(sid, subs=[{"Status": "FINISHED"}] * 3 + [{"Status": "FINISHED", "ResultRows": 2}])
    assert resumed.execute_complete(context, {"status": "success", "statement_id": sid})["rows"] == 2
    stub.assert_done()


def failed_copy(stub: RedshiftDataStub, sid: str, error_rows: list[list]) -> dict:
    """DescribeStatement of a batch whose COPY (sub-statement 4) failed, then the load-error lookup."""
    subs = [{"Status": "FINISHED"}] * 3 + [
        {
            "Status": "FAILED",
            "Error": "ERROR: Load into table 'y1' failed. Check 'sys_load_error_detail' system table for details.",
            "QueryString": 'copy "raw"."y1" (...)',
            "RedshiftQueryId": 4242,
        }
    ]
    stub.expect_describe(sid, status="FAILED", subs=subs)
    lookup = stub.expect_statement(
        ANY,
        [
            {"name": "query_id", "value": "4242"},
            {"name": "since", "value": ANY},
            {"name": "staged_prefix", "value": f"{STAGING}/%"},
        ],
    )
    stub.expect_describe(lookup)
    stub.expect_result(lookup, error_rows)
    return {"Status": "FAILED"}


SYS_ROW = [f"{STAGING}/FF1_131000123_2504.txt.tsv", 2, "payload_9", 1204]


def test_a_failed_copy_is_explained_from_sys_load_error_detail(dag, staged):
    from dpc_elt import operations

    op, context, stub = operator(dag, "y1", staged)
    sid = stub.expect_batch(expected_statements("y1"), PARAMS, ANY)
    stub.expect_describe(sid, status="FAILED", subs=[{"Status": "FINISHED"}] * 3 + [{"Status": "FAILED"}])
    failed_copy(stub, sid, [SYS_ROW])

    with (
        mock.patch.object(operations, "report_copy_error", wraps=operations.report_copy_error) as reported,
        pytest.raises(RawFileError) as raised,
    ):
        op.execute(context)

    stub.assert_done()
    error = raised.value
    # Staged line 2 is source line 3: the y1 fixture has a header line.
    assert (error.file, error.line) == ("FF1_131000123_2504.txt", 3)
    assert str(error) == (
        "FF1_131000123_2504.txt:3: COPY rejected the line: value longer than the column allows (bytes) "
        "(column payload_9, load error 1204)"
    )
    lookup_sql = next(s["Sql"] for s in stub.sent if s["operation"] == "ExecuteStatement")
    selected = lookup_sql.lower().split("from sys_load_error_detail")[0]
    assert "sys_load_error_detail" in lookup_sql.lower()
    assert "error_message" not in selected and "raw_" not in selected  # never the rejected value
    assert all(s.get("WorkgroupName") == WORKGROUP for s in stub.sent if "Sql" in s or "Sqls" in s)
    reported.assert_called_once_with("FF1_131000123_2504.txt", 3)  # the CopyErrorCount metric's log line


def test_a_failed_copy_reported_by_the_trigger_is_explained_too(dag, staged):
    op, context, stub = operator(dag, "y1", staged)
    sid = "11111111-2222-4333-8444-555555555555"
    failed_copy(stub, sid, [SYS_ROW])
    event = {"status": "error", "statement_id": sid, "type": "FAILED", "message": "Statement ... FAILED"}
    with pytest.raises(RawFileError, match=r"FF1_131000123_2504.txt:3: COPY rejected"):
        op.execute_complete(context, event)
    stub.assert_done()


def test_a_failed_batch_without_load_errors_is_not_blamed_on_the_file(dag, staged):
    op, context, stub = operator(dag, "y1", staged)
    sid = stub.expect_batch(expected_statements("y1"), PARAMS, ANY)
    stub.expect_describe(sid, status="FAILED", subs=[{"Status": "FINISHED"}] * 3 + [{"Status": "FAILED"}])
    failed_copy(stub, sid, [])
    with pytest.raises(production.RedshiftStatementError, match="statement 4 of 4 FAILED"):
        op.execute(context)


@pytest.mark.parametrize("code", ["ThrottlingException", "ActiveStatementsExceededException"])
def test_throttling_becomes_a_retried_warehouse_busy_error(dag, staged, code):
    op, context, stub = operator(dag, "d", staged)
    stub.stubber.add_client_error("batch_execute_statement", service_error_code=code, http_status_code=400)
    with pytest.raises(WarehouseBusyError, match=code) as raised:
        op.execute(context)
    assert steps.COPY_RAW_RETRY["retry_policy"].evaluate(raised.value, 1, 5).action.value == "retry"


def test_a_lost_concurrent_transaction_is_retried(dag, staged):
    op, context, stub = operator(dag, "d", staged)
    sid = stub.expect_batch(expected_statements("d"), PARAMS, ANY)
    stub.expect_describe(sid, status="FAILED", subs=[{"Status": "FINISHED"}] * 3)
    subs = [{"Status": "FINISHED"}] * 2 + [
        {
            "Status": "FAILED",
            "Error": "ERROR: 1023 DETAIL: Serializable isolation violation on table",
            "QueryString": "delete",
        }
    ]
    stub.expect_describe(sid, status="FAILED", subs=subs)
    with pytest.raises(WarehouseBusyError, match="concurrent transaction"):
        op.execute(context)


def test_the_copy_failure_notice_is_published_to_sns(dag, staged, aws, cfg, monkeypatch):
    import boto3

    from dpc_elt.notify import Message, describe_failure

    sns = boto3.client("sns", endpoint_url=aws.endpoint)
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint)
    topic = sns.create_topic(Name="dpc-elt-notices")["TopicArn"]
    queue = sqs.create_queue(QueueName="dpc-elt-notices")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setattr(cfg, "sns_topic_arn", topic)

    op, context, stub = operator(dag, "y1", staged)
    sid = stub.expect_batch(expected_statements("y1"), PARAMS, ANY)
    stub.expect_describe(sid, status="FAILED", subs=[{"Status": "FINISHED"}] * 3 + [{"Status": "FAILED"}])
    failed_copy(stub, sid, [SYS_ROW])
    with pytest.raises(RawFileError) as raised:
        op.execute(context)

    # What notify_failure builds from record_failure's description: one message for every channel.
    message = Message("FAILURE", "dpc_elt", "manual__1", YYYYMM, "test")
    message.failures.append(describe_failure("copy_raw.load_y1", raised.value, "http://airflow.invalid/log"))
    assert production.publish_sns(message, context, cfg) == f"sns:{topic}"

    (received,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    envelope = json.loads(received["Body"])
    assert envelope["Message"] == message.text()
    assert "FF1_131000123_2504.txt:3: COPY rejected the line" in envelope["Message"]
    assert envelope["Subject"] == f"dpc_elt {YYYYMM} FAILURE [test]"
    assert envelope["MessageAttributes"]["status"]["Value"] == "FAILURE"


def test_an_sns_topic_must_be_an_arn(cfg, monkeypatch):
    from dpc_elt.notify import Message

    monkeypatch.setattr(cfg, "sns_topic_arn", "dpc-elt-notices")
    with pytest.raises(ValueError, match="DPC_SNS_TOPIC_ARN"):
        production.publish_sns(Message("SUCCESS", "dpc_elt", "r", YYYYMM, "test"), {}, cfg)
