"""infra/terraform/modules/manifest_events declares what the moto tests wire by hand: the raw bucket's
notification of every new ``_manifest.json`` under the raw prefix to a queue that only that bucket of
this account may send to, a dead-letter queue with its alarm, the MWAA role's right to read and delete
the messages (what the triggerer's SQS trigger calls), and the setting the DAG reads."""

from __future__ import annotations

import re

from dpc_elt.core.settings import MANIFEST_QUEUE_URL_PATTERN
from tests.manifest_events.conftest import NOTIFIED_EVENTS, NOTIFIED_PREFIX, NOTIFIED_SUFFIX
from tests.operations.support import TERRAFORM
from tests.operations.test_terraform import parsed

MODULE = TERRAFORM / "modules" / "manifest_events"
EXAMPLE = TERRAFORM / "examples" / "operations" / "main.tf"


def blocks(kind: str) -> dict[str, dict]:
    """The module's ``resource``/``data`` blocks as {"type.name": body}, ``variable``/``output`` as {name: body}."""
    found: dict[str, dict] = {}
    for path in sorted(MODULE.glob("*.tf")):
        for block in parsed(path).get(kind, []):
            for first, body in block.items():
                if kind in ("variable", "output"):
                    found[first] = body
                else:
                    found |= {f"{first}.{name}": attrs for name, attrs in body.items()}
    return found


def local(name: str) -> str:
    merged: dict = {}
    for path in sorted(MODULE.glob("*.tf")):
        for block in parsed(path).get("locals", []):
            merged |= block
    return merged[name]


def statements(document: str) -> list[dict]:
    return blocks("data")[f"aws_iam_policy_document.{document}"]["statement"]


def test_the_bucket_notifies_the_queue_of_manifests_under_the_raw_prefix_as_the_tests_wire_it():
    notification = blocks("resource")["aws_s3_bucket_notification.manifests"]
    (queue,) = notification["queue"]
    assert queue["queue_arn"] == "${aws_sqs_queue.manifests.arn}"
    assert queue["events"] == NOTIFIED_EVENTS
    assert queue["filter_suffix"] == NOTIFIED_SUFFIX
    assert queue["filter_prefix"] == "${local.key_prefix}"
    default_prefix = blocks("variable")["raw_prefix"]["default"]
    assert f"{default_prefix}/" == NOTIFIED_PREFIX
    assert "trimsuffix(var.raw_prefix" in local("raw_prefix")
    # S3 checks it may send when the notification is put: the queue policy must exist first.
    assert notification["depends_on"] == ["${aws_sqs_queue_policy.manifests}"]


def test_only_the_raw_bucket_of_this_account_may_send_to_the_queue():
    (statement,) = statements("manifests_queue")
    assert statement["actions"] == ["sqs:SendMessage"]
    assert statement["principals"] == [{"type": "Service", "identifiers": ["s3.amazonaws.com"]}]
    conditions = {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]}
    assert conditions == {
        "aws:SourceArn": ("ArnEquals", ["${local.bucket_arn}"]),
        "aws:SourceAccount": ("StringEquals", ["${var.account_id}"]),
    }
    assert local("bucket_arn") == "arn:aws:s3:::${var.bucket_name}"


def test_the_queue_long_polls_is_encrypted_and_redrives_to_an_alarmed_dead_letter_queue():
    resources = blocks("resource")
    queue, dlq = resources["aws_sqs_queue.manifests"], resources["aws_sqs_queue.manifests_dlq"]
    assert queue["sqs_managed_sse_enabled"] is True and dlq["sqs_managed_sse_enabled"] is True
    assert queue["receive_wait_time_seconds"] == 20  # the trigger's long poll
    assert "deadLetterTargetArn = aws_sqs_queue.manifests_dlq.arn" in queue["redrive_policy"]
    assert "maxReceiveCount = var.max_receive_count" in queue["redrive_policy"]
    assert not queue["name"].endswith(".fifo")  # S3 notifications cannot target FIFO queues
    alarm = resources["aws_cloudwatch_metric_alarm.manifest_dlq"]
    assert alarm["namespace"] == "AWS/SQS" and alarm["dimensions"] == {
        "QueueName": "${aws_sqs_queue.manifests_dlq.name}"
    }
    assert alarm["comparison_operator"] == "GreaterThanThreshold" and alarm["threshold"] == 0
    assert alarm["alarm_actions"] == "${local.alarm_topic}"


def test_the_mwaa_role_may_receive_and_delete_the_messages_and_nothing_more():
    (statement,) = statements("mwaa_reads_manifest_events")
    # SqsSensorTrigger: ReceiveMessage, then DeleteMessageBatch (authorised as sqs:DeleteMessage).
    assert sorted(statement["actions"]) == ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    assert statement["resources"] == ["${aws_sqs_queue.manifests.arn}"]
    policy = blocks("resource")["aws_iam_role_policy.mwaa_reads_manifest_events"]
    assert policy["role"] == "${local.role_name}"


def test_the_output_is_the_setting_the_dag_reads_and_the_example_uses_the_module():
    line = blocks("output")["mwaa_env_line"]["value"]
    assert line == "DPC_MANIFEST_QUEUE_URL=${aws_sqs_queue.manifests.id}"
    example_url = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/dpc-elt-manifests-dev"
    assert MANIFEST_QUEUE_URL_PATTERN.fullmatch(example_url)  # what aws_sqs_queue.id is on AWS
    (module,) = [block["manifest_events"] for block in parsed(EXAMPLE)["module"] if "manifest_events" in block]
    assert module["source"] == "../../modules/manifest_events"
    required = {name for name, body in blocks("variable").items() if "default" not in body}
    assert required <= set(module), f"the example leaves out {required - set(module)}"
    assert re.search(
        r"DPC_MANIFEST_QUEUE_URL=https://sqs\.", (TERRAFORM.parents[1] / "mwaa" / "example.env").read_text()
    )
