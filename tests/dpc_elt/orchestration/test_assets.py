"""The exports as an Airflow Asset: one event per exported month, with what a downstream job needs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dpc_elt.core import settings
from dpc_elt.orchestration import assets


def test_the_export_root_is_the_asset_on_either_backend(tmp_path):
    cfg = dataclasses.replace(settings.get_settings(), processed_root=str(tmp_path / "processed"))
    assert assets.exports_asset(cfg).uri == (tmp_path / "processed").resolve().as_uri()
    s3 = dataclasses.replace(cfg, processed_root="s3://dpc-learning-data-prod/processed/")
    assert assets.exports_asset(s3).uri == "s3://dpc-learning-data-prod/processed"
    assert assets.exports_asset(s3).name == assets.exports_asset(cfg).name == "dpc_elt_exports"


def test_export_parquet_emits_one_event_per_month_written(monkeypatch, tmp_path):
    from airflow.sdk import DAG
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from dpc_elt.ops import quality_report
    from dpc_elt.orchestration import steps

    monkeypatch.setattr(quality_report, "write_report", lambda yyyymm, cfg: f"report-{yyyymm}")
    with DAG("t_assets", schedule=None):
        task = steps.export_parquet()
    assert task.outlets == [assets.EXPORTED_MONTHS]
    months = [
        {"yyyymm": m, "uri": f"/x/yyyymm={m}", "files": [{"path": "p", "rows": r}], "manifest_sha256": f"{m}-sha"}
        for m, r in (("202503", 3), ("202504", 4))
    ]
    events = OutletEventAccessors()
    task.finish({"outlet_events": events}, months)
    added = events[assets.EXPORTED_MONTHS].asset_alias_events
    assert [event.extra for event in added] == [
        {"yyyymm": "202503", "uri": "/x/yyyymm=202503", "rows": 3, "manifest_sha256": "202503-sha"},
        {"yyyymm": "202504", "uri": "/x/yyyymm=202504", "rows": 4, "manifest_sha256": "202504-sha"},
    ]
    assert {event.dest_asset_key.name for event in added} == {"dpc_elt_exports"}


def test_the_example_consumer_is_scheduled_on_the_exports():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[3] / "dags" / "dpc_export_consumer.py"))
    assert bag.import_errors == {}
    dag = bag.dags["dpc_export_consumer"]
    (asset,) = dag.timetable.asset_condition.objects
    assert asset == assets.exports_asset()
