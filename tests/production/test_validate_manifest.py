"""validate_manifest on S3: the backend's sensor — the provider's deferrable S3KeySensor — waits for the run
month's _manifest.json (and ends a scheduled run skipped, recording the good end on S3, a manual one
failed, when it never comes); validate_month runs the embedded validation (schema, names, sizes, streamed
SHA-256, records) on s3fs against moto."""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred

from dpc_elt.core.errors import ManifestError
from tests.dpc_elt.conftest import Dpc
from tests.production.conftest import BUCKET, task_context
from tests.production.support import YYYYMM, land_month, production_dag

MANIFEST_URI = f"s3://{BUCKET}/raw/yyyymm={YYYYMM}/_manifest.json"


@pytest.fixture
def sensor(aws, cfg):
    return production_dag().get_task("validate_manifest.wait_for_manifest")


def test_the_sensor_is_the_deferrable_s3_key_sensor_with_the_asl_retry(sensor):
    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

    from dpc_elt.backends.redshift.operators import ManifestKeySensor
    from dpc_elt.orchestration.retry import VALIDATE_MANIFEST_RETRY

    assert isinstance(sensor, ManifestKeySensor) and isinstance(sensor, S3KeySensor)
    assert sensor.deferrable and sensor.aws_conn_id == "dpc_aws" and sensor.raw_root == f"s3://{BUCKET}/raw"
    assert (sensor.retries, sensor.retry_delay) == (
        VALIDATE_MANIFEST_RETRY["retries"],
        VALIDATE_MANIFEST_RETRY["retry_delay"],
    )


def test_the_sensor_finds_the_run_months_manifest(sensor, s3fs_):
    land_month(s3fs_)
    assert sensor.execute(task_context(wait_minutes=60)) is None
    assert sensor.bucket_key == MANIFEST_URI


def test_an_empty_month_param_means_the_month_before_the_logical_date(sensor, s3fs_):
    land_month(s3fs_)  # 202504; the context's logical date is 2025-05-08
    sensor.execute(task_context(yyyymm=None, run_type="scheduled", wait_minutes=60))
    assert sensor.bucket_key == MANIFEST_URI


def test_waiting_defers_to_the_s3_key_trigger_for_the_wait_minutes(sensor):
    from airflow.providers.amazon.aws.triggers.s3 import S3KeyTrigger

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context(wait_minutes=90))
    trigger = deferred.value.trigger
    assert isinstance(trigger, S3KeyTrigger) and trigger.bucket_key == MANIFEST_URI
    assert deferred.value.timeout.total_seconds() == 90 * 60


def test_the_trigger_fires_once_the_manifest_lands(sensor, s3fs_):
    """The triggerer's side, for real: S3KeyTrigger (aiobotocore) against moto."""
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context(wait_minutes=90))
    land_month(s3fs_)

    async def first_event():
        events = deferred.value.trigger.run()
        return await asyncio.wait_for(anext(events), timeout=20)

    assert asyncio.run(first_event()).payload == {"status": "success"}


@pytest.mark.parametrize(("run_type", "expected"), [("scheduled", AirflowSkipException), ("manual", ManifestError)])
def test_no_manifest_skips_a_scheduled_run_and_fails_a_manual_one(sensor, s3fs_, run_type, expected):
    with pytest.raises(expected, match=r"not delivered yet|manifest missing"):
        sensor.execute(task_context(run_type=run_type, wait_minutes=0))
    # A scheduled run that found nothing ended well: its marker is on S3, through the AWS connection.
    s3fs_.invalidate_cache()
    marker = f"{BUCKET}/processed/_ops/dpc_elt_last_run.json"
    assert s3fs_.exists(marker) == (run_type == "scheduled")
    if run_type == "scheduled":
        assert json.loads(s3fs_.cat_file(marker))["outcome"] == "not_delivered"


@pytest.mark.parametrize(("run_type", "expected"), [("scheduled", AirflowSkipException), ("manual", ManifestError)])
def test_a_deferral_timeout_skips_a_scheduled_run_and_fails_a_manual_one(sensor, run_type, expected):
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

    context = task_context(run_type=run_type, wait_minutes=90)
    with pytest.raises(expected):
        sensor.resume_execution(TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context)


def test_check_manifest_validates_the_month_on_s3(backend, s3fs_):
    dpc = Dpc()
    files = dpc.default_files()
    land_month(s3fs_, files)
    s3fs_.pipe_file(f"{BUCKET}/raw/yyyymm={YYYYMM}/README.txt", b"not listed")

    manifest = backend.validate_month(YYYYMM)

    assert [(f.path, f.records, f.bytes) for f in manifest.files] == [
        (f.path, f.records, len(f.content)) for f in files
    ]
    assert manifest.unlisted == ("README.txt",)


def test_a_file_changed_after_its_manifest_rejects_the_month(backend, s3fs_):
    files = Dpc().default_files()
    land_month(s3fs_, files)
    tampered = bytearray(files[1].content)
    tampered[-3] ^= 0x01  # same size, other bytes
    s3fs_.pipe_file(f"{BUCKET}/raw/yyyymm={YYYYMM}/{files[1].path}", bytes(tampered))

    with pytest.raises(ManifestError, match=f"{files[1].path}: sha256 differs"):
        backend.validate_month(YYYYMM)


def test_a_missing_month_folder_is_a_missing_manifest(aws, backend):
    with pytest.raises(ManifestError, match="manifest missing"):
        backend.validate_month(YYYYMM)
