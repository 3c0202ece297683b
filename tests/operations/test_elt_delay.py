"""ELTExecutionDelay: the definition (fresh, overdue, never ended well), the marker the pipeline
writes, and publishing through the amazon provider to a mocked CloudWatch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dpc_elt import operations

JST = ZoneInfo("Asia/Tokyo")


def jst(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=JST)


class TestDefinition:
    def test_fresh_when_the_last_run_ended_after_todays_slot(self):
        # ended 03:40 today: the next run is due tomorrow 03:00 + 360 min
        assert operations.elt_execution_delay_minutes(jst(24, 23, 59), jst(24, 3, 40)) == 0.0
        assert operations.elt_execution_delay_minutes(jst(25, 9, 0), jst(24, 3, 40)) == 0.0

    def test_overdue_counts_from_the_next_slot_plus_the_run_window(self):
        last = jst(24, 3, 40)
        assert operations.elt_execution_delay_minutes(jst(25, 9, 1), last) == 1.0
        assert operations.elt_execution_delay_minutes(jst(25, 10, 30), last) == 90.0
        assert operations.elt_execution_delay_minutes(jst(25, 10, 35), last) == 95.0  # above the alarm
        # a run that waited for the manifest until 09:00 and ended then is fresh again
        assert operations.elt_execution_delay_minutes(jst(25, 10, 35), jst(25, 9, 5)) == 0.0

    def test_a_stopped_pipeline_keeps_growing_across_days(self):
        last = jst(20, 3, 30)
        assert operations.elt_execution_delay_minutes(jst(24, 9, 0), last) == 3 * 24 * 60.0

    def test_never_ended_well_counts_from_the_pipeline_start(self):
        now = jst(1, 12, 0, month=1).replace(year=2025)
        assert operations.elt_execution_delay_minutes(now, None) == 180.0  # due 2025-01-01 09:00 JST
        assert operations.elt_execution_delay_minutes(jst(24, 12), None) > operations.ELT_DELAY_ALARM_MINUTES

    def test_time_zones_of_the_inputs_do_not_matter(self):
        last = jst(24, 3, 40).astimezone(UTC)
        now = jst(25, 10, 35).astimezone(UTC)
        assert operations.elt_execution_delay_minutes(now, last) == 95.0

    def test_now_must_be_aware(self):
        with pytest.raises(ValueError):
            operations.elt_execution_delay_minutes(datetime(2026, 11, 25, 12), None)


class TestMarker:
    def test_record_then_read(self, cfg, context):
        ended = datetime(2026, 11, 24, 18, 40, tzinfo=UTC)
        operations.record_run_end(context, "loaded", yyyymm="202510", cfg=cfg, now=ended)
        last = operations.read_last_run_end(cfg)
        assert (last.outcome, last.yyyymm, last.ended_at, last.dag_id) == (
            "loaded",
            "202510",
            ended,
            context["ti"].dag_id,
        )
        assert operations.run_marker_uri(cfg).startswith(cfg.processed_root)
        assert "/_ops/" in operations.run_marker_uri(cfg)  # Parquet readers skip _-prefixed folders

    def test_newer_end_replaces_the_marker_on_any_fsspec_root(self, cfg, context):
        memory = operations.settings.Settings(**{**cfg.__dict__, "processed_root": "memory://ops-test/processed"})
        first = datetime(2026, 11, 23, 18, 5, tzinfo=UTC)
        operations.record_run_end(context, "not_delivered", cfg=memory, now=first)
        operations.record_run_end(context, "loaded", cfg=memory, now=first + timedelta(days=1))
        last = operations.read_last_run_end(memory)
        assert (last.outcome, last.ended_at) == ("loaded", first + timedelta(days=1))

    def test_missing_or_unreadable_marker_counts_as_never(self, cfg, context):
        assert operations.read_last_run_end(cfg) is None
        operations.record_run_end(context, "loaded", cfg=cfg)
        path = operations.run_marker_uri(cfg)
        with open(path, "w") as handle:
            json.dump({"ended_at": "2026-11-24T03:00:00"}, handle)  # no zone, no outcome
        assert operations.read_last_run_end(cfg) is None

    def test_only_the_two_good_outcomes(self, cfg, context):
        with pytest.raises(ValueError):
            operations.record_run_end(context, "failed", cfg=cfg)


class TestMeasureAndPublish:
    def test_measure_reads_the_marker(self, cfg, context):
        operations.record_run_end(context, "loaded", cfg=cfg, now=jst(24, 3, 40))
        assert operations.measure_elt_delay(cfg, now=jst(25, 10, 35)) == 95.0
        assert operations.measure_elt_delay(cfg, now=jst(25, 8, 0)) == 0.0

    def test_datapoint_arrives_in_cloudwatch(self, aws):
        import boto3

        operations.publish_elt_delay(95.0, environment="prod", aws_conn_id=aws)
        client = boto3.client("cloudwatch", region_name="ap-northeast-1")  # the connection's region
        (metric,) = client.list_metrics(Namespace="Custom/DPC")["Metrics"]
        assert metric["MetricName"] == "ELTExecutionDelay"
        assert metric["Dimensions"] == [{"Name": "Environment", "Value": "prod"}]
        stats = client.get_metric_statistics(
            Namespace="Custom/DPC",
            MetricName="ELTExecutionDelay",
            Dimensions=[{"Name": "Environment", "Value": "prod"}],
            StartTime=datetime.now(UTC) - timedelta(hours=1),
            EndTime=datetime.now(UTC) + timedelta(hours=1),
            Period=300,
            Statistics=["Maximum"],
        )
        assert [point["Maximum"] for point in stats["Datapoints"]] == [95.0]

    def test_measure_publishes_only_when_asked(self, aws, cfg, context):
        import boto3

        client = boto3.client("cloudwatch", region_name="ap-northeast-1")
        operations.measure_elt_delay(cfg, now=jst(25, 10, 35), publish=False, aws_conn_id=aws)
        assert client.list_metrics(Namespace="Custom/DPC")["Metrics"] == []
        prod = operations.settings.Settings(**{**cfg.__dict__, "environment": "prod"})
        operations.measure_elt_delay(prod, publish=True, aws_conn_id=aws)
        dims = [m["Dimensions"] for m in client.list_metrics(Namespace="Custom/DPC")["Metrics"]]
        assert dims == [[{"Name": "Environment", "Value": "prod"}]]

    def test_metric_task_on_the_embedded_default_logs_without_publishing(self, cfg, log_lines, monkeypatch):
        import pendulum
        from airflow.sdk import DAG

        from dpc_elt import maintenance

        with DAG("t_metrics", schedule=None, start_date=pendulum.datetime(2025, 1, 1)):
            published = maintenance.elt_delay_task()
        monkeypatch.setattr(operations, "publish_elt_delay", lambda *a, **k: pytest.fail("published on embedded"))
        minutes = published.operator.python_callable()
        assert minutes > operations.ELT_DELAY_ALARM_MINUTES  # nothing ever ended well here
        (line,) = [line for line in log_lines if line.startswith("ELTExecutionDelay=")]
        assert f"={minutes:.1f} min [local]" in line and "last good end: never" in line
