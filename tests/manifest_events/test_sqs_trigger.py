"""The watcher's trigger against moto: a ``_manifest.json`` put in the bucket reaches the queue as S3's event
notification, the trigger built by ``manifest_events.manifest_trigger`` (common-messaging's
``MessageQueueTrigger``, scheme ``sqs`` → the amazon provider's ``SqsSensorTrigger``) fires one
TriggerEvent with it and deletes it, and the month a run derives from that payload is the manifest's."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import unquote_plus

import pytest

from dpc_elt.core import params, settings
from dpc_elt.core.errors import ParameterError
from dpc_elt.orchestration import manifest_events
from tests.manifest_events.conftest import messages_left, triggering_events


@pytest.fixture
def cfg(queue, monkeypatch):
    monkeypatch.setenv("DPC_BACKEND", "production")
    monkeypatch.setenv("DPC_S3_BUCKET", queue.bucket)
    monkeypatch.setenv("DPC_AWS_CONN_ID", queue.conn_id)
    monkeypatch.setenv("DPC_MANIFEST_QUEUE_URL", queue.url)
    monkeypatch.delenv("DPC_RAW_ROOT", raising=False)
    settings.get_settings.cache_clear()
    yield settings.get_settings()
    settings.get_settings.cache_clear()


def put(queue, key: str, body: bytes = b"{}") -> None:
    queue.s3.put_object(Bucket=queue.bucket, Key=key, Body=body)


async def first_event(trigger, timeout: float):
    async def run():
        async for event in trigger.run():
            return event
        return None

    return await asyncio.wait_for(run(), timeout)


def fire(cfg, timeout: float = 30):
    """Run the watcher's trigger as the triggerer does, until its first TriggerEvent."""
    return asyncio.run(first_event(manifest_events.manifest_trigger(cfg), timeout))


def run_context(payload: dict) -> dict:
    """A task context of the run the scheduler starts from that event: the triggerer stores the event's
    payload as the Asset event's extra (``Trigger.submit_event``)."""
    extra = {"from_trigger": True, "payload": payload}
    return {
        "params": {"yyyymm": None, "manifest_wait_minutes": 360},
        "dag_run": SimpleNamespace(run_type="asset_triggered", run_after=datetime.now(UTC)),
        "logical_date": None,
        "triggering_asset_events": triggering_events(settings.get_settings().raw_root, [extra]),
    }


def test_the_queue_url_moto_gives_is_one_the_setting_accepts(queue, cfg):
    assert cfg.manifest_queue_url == queue.url and cfg.raw_root == f"s3://{queue.bucket}/raw"


def test_a_landed_manifest_fires_one_event_that_names_its_month(queue, cfg):
    assert messages_left(queue) == 1  # S3's s3:TestEvent, sent when the notification was configured
    put(queue, "raw/yyyymm=202504/FF1_131000123_2504.txt")  # a data file: no event (suffix)
    put(queue, "staging/yyyymm=202504/_manifest.json")  # outside the raw prefix: no event
    put(queue, "raw/yyyymm=202504/_manifest.json")
    assert messages_left(queue) == 2

    event = fire(cfg)

    assert event.payload["status"] == "success"
    (message,) = event.payload["message_batch"]  # the test event was filtered out
    (record,) = json.loads(message["Body"])["Records"]
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["bucket"]["name"] == queue.bucket
    # URL-encoded as S3 sends it (S3 keeps "/", moto encodes it too): "=" arrives as %3D
    assert "%3D202504" in record["s3"]["object"]["key"]
    assert unquote_plus(record["s3"]["object"]["key"]) == "raw/yyyymm=202504/_manifest.json"
    assert params.month_of_context(run_context(event.payload)) == "202504"
    # the manifest's message was deleted on reception; the test event stays until it goes to the DLQ
    assert messages_left(queue) == 1


def test_manifests_of_two_months_come_in_one_event_oldest_first(queue, cfg):
    put(queue, "raw/yyyymm=202503/_manifest.json")
    put(queue, "raw/yyyymm=202504/_manifest.json")

    event = fire(cfg)

    records = params.manifest_records([{"payload": event.payload}])
    assert [params.s3_object(r)[1] for r in records] == [
        "raw/yyyymm=202503/_manifest.json",
        "raw/yyyymm=202504/_manifest.json",
    ]
    assert params.month_of_context(run_context(event.payload)) == "202503"


def test_a_key_that_is_no_month_manifest_fails_the_run_naming_the_rule(queue, cfg):
    put(queue, "raw/yyyymm=202513/_manifest.json")  # within prefix and suffix, but no real month

    event = fire(cfg)

    with pytest.raises(ParameterError) as refused:
        params.month_of_context(run_context(event.payload))
    assert params.MANIFEST_KEY_RULE in str(refused.value)
    assert f"s3://{queue.bucket}/raw/yyyymm=202513/_manifest.json" in str(refused.value)


def test_without_a_manifest_the_trigger_fires_nothing(queue, cfg):
    """Only the test event is in the queue: the filter leaves it, and no TriggerEvent comes."""
    with pytest.raises(TimeoutError):
        fire(cfg, timeout=5)
    assert messages_left(queue) == 1
