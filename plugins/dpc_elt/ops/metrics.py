"""``ELTExecutionDelay`` (decisions.md, "Operations seed"): how many minutes ``dpc_elt`` is overdue.

The next good end of a run is due at the first ``dpc_elt`` slot (03:00 JST) after the last good end
(``dpc_elt.core.run_marker``) plus the run window (the manifest wait, 360 min); the metric is
``max(0, now − due)``. The 5-minute ``dpc_metrics`` task computes it and hands it to the backend,
which publishes it to CloudWatch (production) or logs it (embedded). Minutes and run ids only.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from dpc_elt.backends import get_backend
from dpc_elt.core import run_marker, settings
from dpc_elt.ops.thresholds import ELT_DELAY_ALARM_MINUTES, ELT_DELAY_METRIC, ELT_RUN_WINDOW, ELT_SCHEDULE, ELT_START

log = logging.getLogger(__name__)


def next_slot_after(moment: datetime, schedule: str = ELT_SCHEDULE) -> datetime:
    """The first fire time of ``schedule`` (Asia/Tokyo) strictly after ``moment``."""
    from croniter import croniter

    from dpc_elt.core.params import JST

    return croniter(schedule, moment.astimezone(JST)).get_next(datetime)


def elt_execution_delay_minutes(
    now: datetime,
    last_good_end: datetime | None,
    *,
    schedule: str = ELT_SCHEDULE,
    run_window: timedelta = ELT_RUN_WINDOW,
    start: datetime = ELT_START,
) -> float:
    """Minutes past the time by which the next run should have ended well; 0 while not overdue.

    The next good end is due at the first slot after the last one (or after ``start`` when no run
    ever ended well) plus ``run_window``, the longest a healthy run waits for its delivery.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    due = next_slot_after(last_good_end or start, schedule) + run_window
    return round(max(0.0, (now - due).total_seconds() / 60.0), 1)


def measure_elt_delay(cfg: settings.Settings, *, now: datetime | None = None) -> float:
    """The 5-minute task: compute the delay, log it, and let the backend publish it."""
    backend = get_backend(cfg)
    now = now or datetime.now(UTC)
    last = run_marker.read_run_end(*backend.filesystem(run_marker.run_marker_uri(cfg)))
    minutes = elt_execution_delay_minutes(now, last.ended_at if last else None)
    since = f"{last.outcome} {last.run_id} at {last.to_dict()['ended_at']}" if last else "never"
    log.info("%s=%.1f min [%s] (last good end: %s)", ELT_DELAY_METRIC, minutes, cfg.environment, since)
    if minutes > ELT_DELAY_ALARM_MINUTES:
        log.warning("%s above %d min: see docs/runbook.md, 'Delayed run'", ELT_DELAY_METRIC, ELT_DELAY_ALARM_MINUTES)
    backend.publish_metric(ELT_DELAY_METRIC, minutes)
    return minutes
