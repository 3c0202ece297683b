"""The manifest sensor: found, not yet delivered (scheduled → skipped), missing (manual → failed)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import fsspec
import pytest
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred

from dpc_elt.backends.manifest_wait import ManifestSensor, ObjectExistsTrigger
from dpc_elt.core.errors import ManifestError

ROOT = "memory://sensor-tests/raw"
TIMED_OUT = {"status": "timeout", "uri": f"{ROOT}/yyyymm=202504/_manifest.json"}


@pytest.fixture(autouse=True)
def empty_root():
    fs = fsspec.filesystem("memory")
    if fs.exists("/sensor-tests"):
        fs.rm("/sensor-tests", recursive=True)
    yield fs


def context(run_type: str, wait_minutes: int = 5) -> dict:
    return {
        "params": {"yyyymm": "202504", "manifest_wait_minutes": wait_minutes},
        "dag_run": SimpleNamespace(run_type=run_type, run_after=None),
        "ti": SimpleNamespace(dag_id="dpc_elt", run_id=f"{run_type}__2025-05-01"),
        "logical_date": None,
    }


def first_event(trigger: ObjectExistsTrigger):
    async def run():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(run())


def test_trigger_fires_when_the_file_appears(empty_root):
    empty_root.pipe("/sensor-tests/raw/yyyymm=202504/_manifest.json", b"{}")
    uri = f"{ROOT}/yyyymm=202504/_manifest.json"
    assert first_event(ObjectExistsTrigger(uri, 0.01, 5)) == {"status": "found", "uri": uri}


def test_trigger_times_out_without_the_file():
    uri = f"{ROOT}/yyyymm=202504/_manifest.json"
    assert first_event(ObjectExistsTrigger(uri, 0.01, 0.05))["status"] == "timeout"


def test_trigger_round_trips_through_serialization():
    trigger = ObjectExistsTrigger("memory://x/_manifest.json", 5, 60)
    path, kwargs = trigger.serialize()
    assert path == "dpc_elt.backends.manifest_wait.ObjectExistsTrigger"
    assert ObjectExistsTrigger(**kwargs).serialize() == (path, kwargs)


def test_present_manifest_passes_without_deferring(empty_root):
    empty_root.pipe("/sensor-tests/raw/yyyymm=202504/_manifest.json", b"{}")
    assert ManifestSensor(task_id="wait", raw_root=ROOT).execute(context("manual")) is None


def test_absent_manifest_defers_to_the_trigger_for_the_run_month():
    with pytest.raises(TaskDeferred) as deferred:
        ManifestSensor(task_id="wait", raw_root=ROOT, poke_seconds=7).execute(context("manual", 30))
    assert deferred.value.trigger.uri == f"{ROOT}/yyyymm=202504/_manifest.json"
    assert (deferred.value.trigger.poke_seconds, deferred.value.trigger.timeout_seconds) == (7, 1800)


def test_scheduled_run_without_delivery_ends_skipped_and_counts_as_a_good_end(monkeypatch, tmp_path):
    from dpc_elt.core import run_marker, settings

    monkeypatch.setenv("DPC_DATA_DIR", str(tmp_path))
    settings.get_settings.cache_clear()
    sensor = ManifestSensor(task_id="wait", raw_root=ROOT)
    with pytest.raises(AirflowSkipException):
        sensor.execute_complete(context("scheduled"), TIMED_OUT)
    cfg = settings.get_settings()
    end = run_marker.read_run_end(*fsspec.core.url_to_fs(run_marker.run_marker_uri(cfg)))
    settings.get_settings.cache_clear()
    assert (end.run_id, end.outcome) == ("scheduled__2025-05-01", "not_delivered")


def test_manual_run_without_delivery_fails_naming_the_file():
    sensor = ManifestSensor(task_id="wait", raw_root=ROOT)
    with pytest.raises(ManifestError, match=r"yyyymm=202504/_manifest.json: manifest missing"):
        sensor.execute_complete(context("manual"), TIMED_OUT)


def test_zero_wait_fails_at_once_without_deferring():
    with pytest.raises(ManifestError):
        ManifestSensor(task_id="wait", raw_root=ROOT).execute(context("manual", 0))
