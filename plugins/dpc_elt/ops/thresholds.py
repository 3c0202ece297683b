"""The numbers of the operations design, in one place. infra/terraform/modules/operations uses the same
numbers; tests compare both with the operations seed."""

from __future__ import annotations

from datetime import datetime, timedelta

from dpc_elt.core.metric_names import ELT_DELAY_METRIC, ENVIRONMENT_DIMENSION, METRIC_NAMESPACE
from dpc_elt.core.params import JST, MANIFEST_WAIT_DEFAULT_MINUTES

__all__ = [
    "ELT_DELAY_METRIC",
    "ENVIRONMENT_DIMENSION",
    "METRIC_NAMESPACE",
]

# CloudWatch: the metric names are shared with the backend that publishes them.
ELT_DELAY_ALARM_MINUTES = 90

# Manual-maintenance conditions, checked weekly by dpc_maintenance_weekly and alerted. As the seed
# words them: "20 % 以上" and "1 億件以上" include the number itself, the skew "> 20 %" does not.
VACUUM_FULL_SHARE_PCT = 20.0  # unsorted or unused (deleted, not reclaimed) share of a table, at least
TABLE_SKEW_PCT = 20.0  # rows on the fullest slice above an even spread, more than
ANALYZE_AFTER_ROWS = 100_000_000  # rows changed since the last ANALYZE, at least
# ANALYZE COMPRESSION recommendations shown in the monthly Slack report (all of them go to the log).
COMPRESSION_REPORT_MAX_LINES = 20

# What ELTExecutionDelay measures: dpc_elt's schedule (a test compares it with the DAG).
ELT_DAG_ID = "dpc_elt"
ELT_SCHEDULE = "0 3 * * *"  # CronTriggerTimetable, Asia/Tokyo
ELT_START = datetime(2025, 1, 1, tzinfo=JST)  # dpc_elt's start_date: "never ended well" counts from here
ELT_RUN_WINDOW = timedelta(minutes=MANIFEST_WAIT_DEFAULT_MINUTES)
