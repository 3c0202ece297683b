"""The SNS channel of the notices (``dpc_elt.notify.channels``), as production uses it: the failure notice
of a rejected COPY line reaches an SNS topic (moto) through the amazon provider's SnsNotifier and the
one AWS connection setting, with the same text as Slack, an ASCII subject and filterable attributes."""

from __future__ import annotations

import json

import pytest

from dpc_elt.core.errors import RawFileError
from dpc_elt.notify import Message, deliver, describe_failure
from dpc_elt.notify.channels import publish_sns, sns_subject
from tests.production.support import YYYYMM


@pytest.fixture
def topic(aws, cfg, monkeypatch):
    """An SNS topic with an SQS queue subscribed (to read what was published), set as DPC_SNS_TOPIC_ARN."""
    import boto3

    sns = boto3.client("sns", endpoint_url=aws.endpoint)
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint)
    arn = sns.create_topic(Name="dpc-elt-notices")["TopicArn"]
    queue = sqs.create_queue(QueueName="dpc-elt-notices")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setattr(cfg, "sns_topic_arn", arn)

    def received() -> dict:
        (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
        return json.loads(message["Body"])

    return arn, received


def test_the_copy_failure_notice_is_published_to_sns(topic, cfg):
    arn, received = topic
    error = RawFileError(
        "Dn_131000123_2504.txt",
        "COPY rejected the line: value longer than the column allows (bytes)",
        "column item_name, load error 1204",
        line=2,
    )
    message = Message("FAILURE", "dpc_elt", "manual__1", YYYYMM, "test")
    message.failures.append(describe_failure("copy_raw", error, "http://airflow.invalid/log"))

    assert publish_sns(message, {}, cfg) == f"sns:{arn}"

    envelope = received()
    assert envelope["Message"] == message.text()
    assert "Dn_131000123_2504.txt:2: COPY rejected the line" in envelope["Message"]
    assert envelope["Subject"] == f"dpc_elt {YYYYMM} FAILURE [test]"
    attributes = {name: value["Value"] for name, value in envelope["MessageAttributes"].items()}
    assert attributes == {"status": "FAILURE", "environment": "test", "dag_id": "dpc_elt", "yyyymm": YYYYMM}


def test_deliver_sends_to_sns_when_a_topic_is_set(topic, cfg):
    arn, received = topic
    assert deliver(Message("SUCCESS", "dpc_elt", "scheduled__1", YYYYMM, "test"), {}, cfg) == f"sns:{arn}"
    assert received()["Subject"] == f"dpc_elt {YYYYMM} SUCCESS [test]"


def test_an_sns_topic_must_be_an_arn(cfg, monkeypatch):
    monkeypatch.setattr(cfg, "sns_topic_arn", "dpc-elt-notices")
    with pytest.raises(ValueError, match="DPC_SNS_TOPIC_ARN"):
        publish_sns(Message("SUCCESS", "dpc_elt", "r", YYYYMM, "test"), {}, cfg)


def test_the_subject_is_one_ascii_line_under_100_characters():
    message = Message("FAILURE", "d" * 120, "r", None, "本番")
    subject = sns_subject(message)
    assert len(subject) == 99 and subject.isascii() and "\n" not in subject
