"""Fixtures of the manifest-event tests: the production tests' moto server (S3, SQS) behind the Airflow AWS
connection ``dpc_aws``, plus the queue that the raw bucket notifies, wired the way
``infra/terraform/modules/manifest_events`` wires it (ObjectCreated, prefix ``raw/``, suffix
``_manifest.json``) — moto delivers S3 notifications to its SQS like S3 does, keys URL-encoded."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.production.conftest import BUCKET, CONN_ID, REGION, aws, moto_endpoint  # noqa: F401

ACCOUNT = "123456789012"  # moto's default account
QUEUE_NAME = "dpc-elt-manifests-test"
# The bucket notification of infra/terraform/modules/manifest_events with its default raw_prefix
# (test_terraform_module.py holds the module to these).
NOTIFIED_EVENTS = ["s3:ObjectCreated:*"]
NOTIFIED_PREFIX = "raw/"
NOTIFIED_SUFFIX = "_manifest.json"


@pytest.fixture
def queue(aws):  # noqa: F811
    """The manifest queue and the bucket's notification to it; ``sqs`` and ``s3`` are boto3 clients."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=REGION)
    s3 = boto3.client("s3", endpoint_url=aws.endpoint, region_name=REGION)
    url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "dpc-elt-manifests",
                    "QueueArn": arn,
                    "Events": NOTIFIED_EVENTS,
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": NOTIFIED_PREFIX},
                                {"Name": "suffix", "Value": NOTIFIED_SUFFIX},
                            ]
                        }
                    },
                }
            ]
        },
    )
    return SimpleNamespace(url=url, arn=arn, sqs=sqs, s3=s3, endpoint=aws.endpoint, conn_id=CONN_ID, bucket=BUCKET)


def messages_left(queue) -> int:
    """Messages still in the queue, visible or received-and-not-deleted."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = queue.sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def triggering_events(asset_uri: str, extras: list[dict], *, aliases: tuple[str, ...] = ()):
    """``context["triggering_asset_events"]`` as the task runner builds it from the run's consumed Asset
    events (the real accessor and event type), one event per extra on ``dpc_elt_manifests``."""
    from datetime import UTC, datetime, timedelta

    from airflow.sdk.api.datamodels._generated import (
        AssetAliasReferenceAssetEventDagRun,
        AssetReferenceAssetEventDagRun,
    )
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    from dpc_elt.core.params import MANIFEST_ASSET_NAME

    start = datetime(2025, 5, 8, tzinfo=UTC)
    events = [
        AssetEventDagRunReferenceResult(
            asset=AssetReferenceAssetEventDagRun(name=MANIFEST_ASSET_NAME, uri=asset_uri, extra={}),
            extra=extra,
            source_task_id=None,
            source_dag_id=None,
            source_run_id=None,
            source_map_index=None,
            source_aliases=[AssetAliasReferenceAssetEventDagRun(name=name) for name in aliases],
            timestamp=start + timedelta(minutes=number),
        )
        for number, extra in enumerate(extras)
    ]
    return TriggeringAssetEventsAccessor.build(events)
