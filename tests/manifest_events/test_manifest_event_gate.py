"""``validate_manifest.manifest_event`` (``manifest_events.start_or_skip``) on both backends, the raw root on
(moto) S3: a second event for a month loaded from the same manifest (SHA-256) is a no-op, a changed
manifest reloads, a scheduled or manual run always loads, and events of other months that reached the
run are re-queued, one new Asset event for the next runs."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from dpc_elt.backends import get_backend
from dpc_elt.core import params, run_marker, settings
from dpc_elt.orchestration import manifest_events
from tests.manifest_events.conftest import triggering_events

MANIFEST_A = json.dumps({"manifest_version": 1, "yyyymm": "202504", "created_at": "2025-05-08T09:00:00+09:00"})
MANIFEST_B = MANIFEST_A.replace("09:00:00", "10:30:00")  # a corrected delivery


@pytest.fixture(params=["production", "embedded"])
def cfg(request, queue, monkeypatch, tmp_path):
    """Production (S3 through the Airflow connection, records under s3://…/processed) or the embedded
    backend with its raw root on S3 (fsspec) and its records in a local folder."""
    for name in ("DPC_RAW_ROOT", "DPC_PROCESSED_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DPC_MANIFEST_QUEUE_URL", queue.url)
    monkeypatch.setenv("DPC_AWS_CONN_ID", queue.conn_id)
    if request.param == "production":
        monkeypatch.setenv("DPC_BACKEND", "production")
        monkeypatch.setenv("DPC_S3_BUCKET", queue.bucket)
        monkeypatch.setenv("DPC_REDSHIFT_IAM_ROLE_ARN", "arn:aws:iam::123456789012:role/dpc-redshift-s3")
    else:
        monkeypatch.setenv("DPC_BACKEND", "embedded")
        monkeypatch.setenv("DPC_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("DPC_RAW_ROOT", f"s3://{queue.bucket}/raw")
    settings.get_settings.cache_clear()
    yield settings.get_settings()
    settings.get_settings.cache_clear()


def s3_message(*keys: str, bucket: str) -> dict:
    records = [
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": {"key": k}}} for k in keys
    ]
    return {"MessageId": "m", "Body": json.dumps({"Records": records})}


def key(yyyymm: str) -> str:
    return f"raw/yyyymm%3D{yyyymm}/_manifest.json"


class FakeTI:
    dag_id = "dpc_elt"
    run_id = "asset_triggered__2025-05-08T00:00:00+00:00"


def context(cfg, *messages: dict, run_type: str = "asset_triggered") -> dict:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    extras = [{"from_trigger": True, "payload": {"status": "success", "message_batch": [m]}} for m in messages]
    return {
        "ti": FakeTI(),
        "params": {"yyyymm": None, "manifest_wait_minutes": 360},
        "dag_run": SimpleNamespace(run_type=run_type, run_after=datetime(2025, 5, 8, tzinfo=UTC)),
        "logical_date": datetime(2025, 5, 8, tzinfo=UTC) if run_type == "scheduled" else None,
        "triggering_asset_events": triggering_events(cfg.raw_root, extras),
        "outlet_events": OutletEventAccessors(),
    }


def deliver(queue, yyyymm: str, manifest: str) -> str:
    queue.s3.put_object(Bucket=queue.bucket, Key=f"raw/yyyymm={yyyymm}/_manifest.json", Body=manifest.encode())
    return hashlib.sha256(manifest.encode()).hexdigest()


def record_loaded(cfg, yyyymm: str, sha: str) -> None:
    """What notify_success writes when a run that loaded the month ends well."""
    loaded = run_marker.LoadedManifest(yyyymm, sha, "dpc_elt", "manual__earlier", datetime.now(UTC))
    run_marker.write_loaded_manifest(*get_backend(cfg).filesystem(run_marker.loaded_manifest_uri(cfg, yyyymm)), loaded)


def requeued(ctx) -> list:
    return ctx["outlet_events"][manifest_events.REQUEUED_MANIFESTS].asset_alias_events


def test_same_manifest_is_a_no_op_a_changed_one_reloads(cfg, queue, caplog):
    caplog.set_level(logging.INFO, logger=manifest_events.__name__)
    sha_a = deliver(queue, "202504", MANIFEST_A)
    event = s3_message(key("202504"), bucket=queue.bucket)

    assert manifest_events.start_or_skip(context(cfg, event)) is True  # nothing loaded yet
    record_loaded(cfg, "202504", sha_a)
    caplog.clear()
    assert manifest_events.start_or_skip(context(cfg, event)) is False  # the second event: a no-op
    assert f"202504: NOTHING TO DO — _manifest.json (sha256 {sha_a})" in caplog.text
    assert '"yyyymm": "202504"' in caplog.text  # how to force a reload

    sha_b = deliver(queue, "202504", MANIFEST_B)
    caplog.clear()
    assert manifest_events.start_or_skip(context(cfg, event)) is True  # changed: reload
    assert f"manifest changed (sha256 {sha_b}" in caplog.text
    record_loaded(cfg, "202504", sha_b)
    assert manifest_events.start_or_skip(context(cfg, event)) is False

    # a month whose record was forgotten (copy_raw started replacing it) loads again
    run_marker.forget_loaded_manifest(*get_backend(cfg).filesystem(run_marker.loaded_manifest_uri(cfg, "202504")))
    assert manifest_events.start_or_skip(context(cfg, event)) is True


def test_scheduled_and_manual_runs_always_load(cfg, queue):
    record_loaded(cfg, "202504", deliver(queue, "202504", MANIFEST_A))
    for run_type in ("scheduled", "manual"):
        ctx = context(cfg, run_type=run_type)
        assert manifest_events.start_or_skip(ctx) is True
        assert requeued(ctx) == []


def test_events_of_other_months_are_requeued_as_one_asset_event(cfg, queue):
    deliver(queue, "202504", MANIFEST_A)
    ctx = context(
        cfg,
        s3_message(key("202504"), key("202503"), bucket=queue.bucket),
        s3_message(key("202504"), key("202513"), bucket=queue.bucket),  # 202504 again; a key with no real month
    )
    assert params.month_of_context(ctx) == "202504"
    assert manifest_events.start_or_skip(ctx) is True

    (event,) = requeued(ctx)
    assert event.source_alias_name == manifest_events.REQUEUED_MANIFESTS.name
    assert (event.dest_asset_key.name, event.dest_asset_key.uri) == (params.MANIFEST_ASSET_NAME, cfg.raw_root)
    assert event.extra["requeued_by"] == FakeTI.run_id
    # the next run reads the re-queued event like one from the queue: 202503 first, then the bad key
    records = params.manifest_records([event.extra])
    assert [params.s3_object(r)[1] for r in records] == [
        "raw/yyyymm=202503/_manifest.json",
        "raw/yyyymm=202513/_manifest.json",
    ]
    nxt = context(cfg)
    nxt["triggering_asset_events"] = triggering_events(cfg.raw_root, [event.extra])
    assert params.month_of_context(nxt) == "202503"


def test_a_bad_first_key_still_requeues_the_others_and_leaves_the_refusal_to_the_sensor(cfg, queue, caplog):
    from dpc_elt.core.errors import ParameterError

    ctx = context(cfg, s3_message(key("202513"), key("202504"), bucket=queue.bucket))
    assert manifest_events.start_or_skip(ctx) is True
    assert params.MANIFEST_KEY_RULE in caplog.text
    (event,) = requeued(ctx)
    assert [params.s3_object(r)[1] for r in params.manifest_records([event.extra])] == [
        "raw/yyyymm=202504/_manifest.json"
    ]
    with pytest.raises(ParameterError):  # what wait_for_manifest (every later task) then raises
        params.month_of_context(ctx)


def test_a_single_month_is_not_requeued(cfg, queue):
    deliver(queue, "202504", MANIFEST_A)
    ctx = context(cfg, s3_message(key("202504"), bucket=queue.bucket), s3_message(key("202504"), bucket=queue.bucket))
    assert manifest_events.start_or_skip(ctx) is True
    assert requeued(ctx) == []
