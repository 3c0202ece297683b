"""The same DAG file, two schedules: the 03:00 JST cron alone (the embedded default, no queue), or the cron
OR the manifest Asset watched on SQS when production settings name the queue — parsed without a
connection lookup or any network, and still the state machine of the ASL."""

from __future__ import annotations

import pytest

from tests.production.test_dag import DAGS, ENVIRONMENT
from tests.production.test_dag import parse as parse_dags

QUEUE_URL = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/dpc-elt-manifests-dev"
PRODUCTION = ENVIRONMENT


def parse(env: dict[str, str]):
    return parse_dags(DAGS / "dpc_elt.py", env)


@pytest.fixture(scope="module")
def cron_only():
    bag = parse({})
    assert bag.import_errors == {}
    return bag.dags["dpc_elt"]


@pytest.fixture(scope="module")
def event_driven():
    bag = parse({**PRODUCTION, "DPC_MANIFEST_QUEUE_URL": QUEUE_URL})
    assert bag.import_errors == {}
    return bag.dags["dpc_elt"]


def cron_of(timetable) -> tuple[str, str]:
    return timetable.expression, str(timetable.timezone)


def test_without_a_queue_the_schedule_is_the_cron_alone_and_the_sensor_starts_the_run(cron_only):
    from airflow.sdk import CronTriggerTimetable

    assert type(cron_only.timetable) is CronTriggerTimetable
    assert cron_of(cron_only.timetable) == ("0 3 * * *", "Asia/Tokyo")
    assert "validate_manifest.manifest_event" not in cron_only.task_ids
    assert [t.task_id for t in cron_only.roots] == ["validate_manifest.wait_for_manifest"]


def test_production_without_a_queue_keeps_the_cron_alone():
    bag = parse(PRODUCTION)
    assert bag.import_errors == {}
    assert type(bag.dags["dpc_elt"].timetable).__name__ == "CronTriggerTimetable"


def test_with_a_queue_the_schedule_is_the_cron_or_the_manifest_asset(event_driven):
    from airflow.sdk import Asset, AssetOrTimeSchedule

    timetable = event_driven.timetable
    assert type(timetable) is AssetOrTimeSchedule
    assert cron_of(timetable.timetable) == ("0 3 * * *", "Asia/Tokyo")
    asset = timetable.asset_condition
    assert isinstance(asset, Asset)
    assert (asset.name, asset.uri) == ("dpc_elt_manifests", "s3://dpc-learning-data-dev/raw")
    (watcher,) = asset.watchers
    assert watcher.name == "dpc_elt_manifest_queue"
    # MessageQueueTrigger(scheme="sqs") is stored as the amazon provider's SQS trigger, which the triggerer runs
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "airflow.providers.amazon.aws.triggers.sqs.SqsSensorTrigger"
    assert kwargs["sqs_queue"] == QUEUE_URL and kwargs["aws_conn_id"] == "dpc_aws"
    assert kwargs["message_filtering"] == "jsonpath" and kwargs["delete_message_on_reception"] is True


def test_with_a_queue_each_run_starts_with_the_manifest_event_short_circuit(event_driven):
    from airflow.providers.standard.operators.python import ShortCircuitOperator

    from dpc_elt.orchestration.manifest_events import REQUEUED_MANIFESTS
    from dpc_elt.orchestration.retry import VALIDATE_MANIFEST_RETRY

    gate = event_driven.get_task("validate_manifest.manifest_event")
    assert isinstance(gate, ShortCircuitOperator) and gate.ignore_downstream_trigger_rules
    assert [t.task_id for t in event_driven.roots] == [gate.task_id]
    assert gate.downstream_task_ids == {"validate_manifest.wait_for_manifest"}
    assert gate.retries == VALIDATE_MANIFEST_RETRY["retries"]
    assert REQUEUED_MANIFESTS in gate.outlets
    # everything else is the DAG of the cron-only deployment
    assert set(event_driven.task_ids) - {gate.task_id} == set(parse(PRODUCTION).dags["dpc_elt"].task_ids)


def test_with_a_queue_the_dag_is_still_the_state_machine(event_driven):
    from tests.dags.test_asl_structure import STATES, asl_edges, snake, step_edges, step_of

    assert {step_of(t.task_id) for t in event_driven.tasks} == {snake(name) for name in STATES}
    assert step_edges(event_driven) == asl_edges()


def test_with_a_queue_the_dag_serializes_as_the_scheduler_stores_it(event_driven):
    from airflow.serialization.serialized_objects import DagSerialization

    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(event_driven))
    assert type(restored.timetable).__name__ == "AssetOrTimeSchedule"
    assert set(restored.task_ids) == set(event_driven.task_ids)


def test_a_bad_queue_url_is_an_import_error_naming_the_setting():
    bag = parse({**PRODUCTION, "DPC_MANIFEST_QUEUE_URL": "dpc-elt-manifests"})
    (error,) = bag.import_errors.values()
    assert "DPC_MANIFEST_QUEUE_URL must be a standard SQS queue URL" in error
