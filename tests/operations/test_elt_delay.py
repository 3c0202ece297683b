"""ELTExecutionDelay: the definition (fresh, overdue, never ended well), the marker the pipeline
writes, and publishing through the amazon provider to a mocked CloudWatch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import fsspec
import pytest

from dpc_elt.core import run_marker, settings
from dpc_elt.ops import metrics, thresholds

JST = ZoneInfo("Asia/Tokyo")


def jst(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=JST)


class TestDefinition:
    def test_fresh_when_the_last_run_ended_after_todays_slot(self):
        # ended 03:40 today: the next run is due tomorrow 03:00 + 360 min
        assert metrics.elt_execution_delay_minutes(jst(24, 23, 59), jst(24, 3, 40)) == 0.0
        assert metrics.elt_execution_delay_minutes(jst(25, 9, 0), jst(24, 3, 40)) == 0.0

    def test_overdue_counts_from_the_next_slot_plus_the_run_window(self):
        last = jst(24, 3, 40)
        assert metrics.elt_execution_delay_minutes(jst(25, 9, 1), last) == 1.0
        assert metrics.elt_execution_delay_minutes(jst(25, 10, 30), last) == 90.0
        assert metrics.elt_execution_delay_minutes(jst(25, 10, 35), last) == 95.0  # above the alarm
        # a run that waited for the manifest until 09:00 and ended then is fresh again
        assert metrics.elt_execution_delay_minutes(jst(25, 10, 35), jst(25, 9, 5)) == 0.0

    def test_a_stopped_pipeline_keeps_growing_across_days(self):
        last = jst(20, 3, 30)
        assert metrics.elt_execution_delay_minutes(jst(24, 9, 0), last) == 3 * 24 * 60.0

    def test_never_ended_well_counts_from_the_pipeline_start(self):
        now = jst(1, 12, 0, month=1).replace(year=2025)
        assert metrics.elt_execution_delay_minutes(now, None) == 180.0  # due 2025-01-01 09:00 JST
        assert metrics.elt_execution_delay_minutes(jst(24, 12), None) > thresholds.ELT_DELAY_ALARM_MINUTES

    def test_time_zones_of_the_inputs_do_not_matter(self):
        last = jst(24, 3, 40).astimezone(UTC)
        now = jst(25, 10, 35).astimezone(UTC)
        assert metrics.elt_execution_delay_minutes(now, last) == 95.0

    def test_now_must_be_aware(self):
        with pytest.raises(ValueError):
            metrics.elt_execution_delay_minutes(datetime(2026, 11, 25, 12), None)


def marker(cfg):
    """The filesystem and path of the run marker under ``cfg``'s processed root."""
    return fsspec.core.url_to_fs(run_marker.run_marker_uri(cfg))


def end(context, outcome: str, ended_at: datetime, yyyymm: str | None = None) -> run_marker.RunEnd:
    ti = context["ti"]
    return run_marker.RunEnd(ti.dag_id, ti.run_id, outcome, ended_at, yyyymm)


class TestMarker:
    def test_write_then_read(self, cfg, context):
        ended = datetime(2026, 11, 24, 18, 40, tzinfo=UTC)
        run_marker.write_run_end(*marker(cfg), end(context, "loaded", ended, "202510"))
        last = run_marker.read_run_end(*marker(cfg))
        assert (last.outcome, last.yyyymm, last.ended_at, last.dag_id) == (
            "loaded",
            "202510",
            ended,
            context["ti"].dag_id,
        )
        assert run_marker.run_marker_uri(cfg).startswith(cfg.processed_root)
        assert "/_ops/" in run_marker.run_marker_uri(cfg)  # Parquet readers skip _-prefixed folders

    def test_newer_end_replaces_the_marker_on_any_fsspec_root(self, cfg, context):
        memory = settings.Settings(**{**cfg.__dict__, "processed_root": "memory://ops-test/processed"})
        first = datetime(2026, 11, 23, 18, 5, tzinfo=UTC)
        run_marker.write_run_end(*marker(memory), end(context, "not_delivered", first))
        run_marker.write_run_end(*marker(memory), end(context, "loaded", first + timedelta(days=1)))
        last = run_marker.read_run_end(*marker(memory))
        assert (last.outcome, last.ended_at) == ("loaded", first + timedelta(days=1))

    def test_missing_or_unreadable_marker_counts_as_never(self, cfg, context):
        assert run_marker.read_run_end(*marker(cfg)) is None
        run_marker.write_run_end(*marker(cfg), end(context, "loaded", datetime.now(UTC)))
        with open(run_marker.run_marker_uri(cfg), "w") as handle:
            json.dump({"ended_at": "2026-11-24T03:00:00"}, handle)  # no zone, no outcome
        assert run_marker.read_run_end(*marker(cfg)) is None

    def test_only_the_two_good_outcomes(self, cfg, context):
        with pytest.raises(ValueError):
            run_marker.RunEnd.from_dict({**end(context, "loaded", datetime.now(UTC)).to_dict(), "outcome": "failed"})


class TestMeasure:
    def test_measure_reads_the_marker(self, cfg, context):
        run_marker.write_run_end(*marker(cfg), end(context, "loaded", jst(24, 3, 40)))
        assert metrics.measure_elt_delay(cfg, now=jst(25, 10, 35)) == 95.0
        assert metrics.measure_elt_delay(cfg, now=jst(25, 8, 0)) == 0.0

    def test_the_backend_publishes_what_was_measured(self, cfg, context, monkeypatch):
        from dpc_elt.backends.embedded import EmbeddedBackend

        published = []
        monkeypatch.setattr(
            EmbeddedBackend, "publish_metric", lambda self, name, value: published.append((name, value))
        )
        run_marker.write_run_end(*marker(cfg), end(context, "loaded", jst(24, 3, 40)))
        metrics.measure_elt_delay(cfg, now=jst(25, 10, 35))
        assert published == [(thresholds.ELT_DELAY_METRIC, 95.0)]

    def test_metric_task_on_the_embedded_default_logs_without_publishing(self, cfg, log_lines):
        import pendulum
        from airflow.sdk import DAG

        from dpc_elt.orchestration import maintenance

        with DAG("t_metrics", schedule=None, start_date=pendulum.datetime(2025, 1, 1)):
            published = maintenance.elt_delay_task()
        minutes = published.operator.python_callable()
        assert minutes > thresholds.ELT_DELAY_ALARM_MINUTES  # nothing ever ended well here
        (line,) = [line for line in log_lines if line.startswith("ELTExecutionDelay=")]
        assert f"={minutes:.1f} min [local]" in line and "last good end: never" in line
