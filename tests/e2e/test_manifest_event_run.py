"""End to end, a run that manifest events started: the embedded backend with its raw root on (moto) S3 and a
manifest queue configured, the whole DAG with dag.test(). The run gets the events as the scheduler hands
them over (the run's consumed Asset events, ``triggering_asset_events`` in every task), with no month
in the form and no logical date:

1. events for 202504 and 202503 → 202504 is loaded, its manifest recorded, 202503 re-queued as a new
   Asset event on ``dpc_elt_manifests``;
2. the same 202504 event again → a no-op: ``manifest_event`` short-circuits, every later task is
   skipped, the run is green, nothing is written or notified;
3. a corrected 202504 manifest → the month is loaded again and the new SHA-256 recorded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from dpc_elt.core import run_marker, settings
from dpc_elt.core.params import MANIFEST_ASSET_NAME
from tests.production.conftest import BUCKET, aws, moto_endpoint  # noqa: F401

pytestmark = pytest.mark.e2e


@pytest.fixture
def event_env(month_env, aws, monkeypatch, tmp_path):  # noqa: F811
    """The data directory of ``month_env``, raw deliveries of 202503 and 202504 in the moto bucket."""
    import boto3

    from dpc_elt.dev import synthetic
    from dpc_elt.orchestration.cosmos_config import _configs

    local = tmp_path / "delivered"
    synthetic.main(["--facilities", "2", "--months", "202503-202504", "--out", str(local), "--seed", "7", "--quiet"])
    s3 = boto3.client("s3", endpoint_url=aws.endpoint)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), BUCKET, f"raw/{path.relative_to(local).as_posix()}")
    monkeypatch.setenv("DPC_RAW_ROOT", f"s3://{BUCKET}/raw")
    monkeypatch.setenv("DPC_MANIFEST_QUEUE_URL", f"{aws.endpoint}/123456789012/dpc-elt-manifests")
    monkeypatch.setenv("DPC_AWS_CONN_ID", aws.conn_id)
    settings.get_settings.cache_clear()
    _configs.cache_clear()
    yield settings.get_settings(), s3
    settings.get_settings.cache_clear()
    _configs.cache_clear()


def manifest_event(*yyyymms: str) -> dict:
    """An Asset event's extra as the triggerer stores it for one received SQS message (S3's notification)."""
    records = [
        {
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": f"raw/yyyymm%3D{m}/_manifest.json"}},
        }
        for m in yyyymms
    ]
    message = {"MessageId": "m", "ReceiptHandle": "r", "Body": json.dumps({"Records": records})}
    return {"from_trigger": True, "payload": {"status": "success", "message_batch": [message]}}


def run_for_events(dag, extras: list[dict], monkeypatch):
    """dag.test() for a run that consumed ``extras`` as Asset events on dpc_elt_manifests (what the
    scheduler's asset-triggered run gets), with no month in the form and no logical date."""
    from airflow.models import dagrun as dagrun_module
    from airflow.models.asset import AssetEvent, AssetModel
    from sqlalchemy import select

    original = dagrun_module.get_or_create_dagrun

    def with_events(**kwargs):
        dag_run = original(**kwargs)
        session = kwargs["session"]
        asset = session.scalar(select(AssetModel).where(AssetModel.name == MANIFEST_ASSET_NAME))
        events = [AssetEvent(asset_id=asset.id, extra=extra) for extra in extras]
        session.add_all(events)
        session.flush()
        dag_run.consumed_asset_events.extend(events)
        session.commit()
        return dag_run

    with monkeypatch.context() as patch:
        patch.setattr(dagrun_module, "get_or_create_dagrun", with_events)
        return dag.test(logical_date=None, run_conf={"manifest_wait_minutes": 0})


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def raw_rows(cfg, yyyymm: str) -> int:
    with duckdb.connect(cfg.duckdb_path) as con:
        return con.execute("select count(*) from raw.y1 where yyyymm = ?", [yyyymm]).fetchone()[0]


def loaded_sha(cfg, yyyymm: str) -> str | None:
    import fsspec

    record = run_marker.read_loaded_manifest(*fsspec.core.url_to_fs(run_marker.loaded_manifest_uri(cfg, yyyymm)))
    return record.manifest_sha256 if record else None


def test_event_runs_load_once_skip_a_repeat_and_reload_a_change(event_env, monkeypatch):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from dpc_elt.dev.run_local import _parse_dag

    cfg, s3 = event_env
    dag = _parse_dag()
    assert "validate_manifest.manifest_event" in dag.task_ids
    manifest_key = "raw/yyyymm=202504/_manifest.json"
    delivered = s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read()

    # 1. a first event: 202504 (oldest) is loaded, 202503 re-queued
    first = run_for_events(dag, [manifest_event("202504", "202503")], monkeypatch)
    ran = states(first)
    assert str(first.state) == "success", ran
    assert ran["validate_manifest.manifest_event"] == "success" and ran["notify_success"] == "success"
    assert raw_rows(cfg, "202504") > 0 and raw_rows(cfg, "202503") == 0
    assert loaded_sha(cfg, "202504") == hashlib.sha256(delivered).hexdigest()
    with create_session() as session:
        requeued = [
            dict(event.extra)
            for event in session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.name == MANIFEST_ASSET_NAME, AssetEvent.source_run_id == first.run_id)
            )
        ]
    (extra,) = requeued
    assert extra["requeued_by"] == first.run_id
    assert "yyyymm%3D202503" in extra["payload"]["message_batch"][0]["Body"]

    # 2. the same manifest again: nothing to do, the run stays green
    outbox = Path(cfg.outbox_path)
    notices = outbox.read_text(encoding="utf-8").count("\n")
    second = run_for_events(dag, [manifest_event("202504")], monkeypatch)
    ran = states(second)
    assert str(second.state) == "success", ran
    assert ran.pop("validate_manifest.manifest_event") == "success"
    assert set(ran.values()) == {"skipped"}, ran
    assert outbox.read_text(encoding="utf-8").count("\n") == notices  # no notice for a no-op

    # 3. a corrected manifest (same files, new created_at): loaded again, the new SHA-256 recorded
    manifest = json.loads(delivered)
    manifest["created_at"] = "2025-05-09T10:30:00+09:00"
    corrected = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
    s3.put_object(Bucket=BUCKET, Key=manifest_key, Body=corrected)
    third = run_for_events(dag, [manifest_event("202504")], monkeypatch)
    ran = states(third)
    assert str(third.state) == "success", ran
    assert ran["copy_raw"] == "success" and ran["notify_success"] == "success"
    assert loaded_sha(cfg, "202504") == hashlib.sha256(corrected).hexdigest()
