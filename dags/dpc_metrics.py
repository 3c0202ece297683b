"""
# dpc_metrics — ELTExecutionDelay every 5 minutes

One task, `publish_elt_execution_delay`: how many minutes `dpc_elt` is overdue. The next run of
`dpc_elt` should end well (month loaded, or a scheduled run found no delivery) by its 03:00 JST slot
plus the 360-minute manifest wait; the metric is the minutes past that, 0 while not overdue. It reads
one small marker (`<processed_root>/_ops/dpc_elt_last_run.json`), never the warehouse, so Redshift
Serverless can still pause.

On production it is published as `Custom/DPC` `ELTExecutionDelay` {Environment}; the alarm
`Alert-ELT-Delay` fires above 90 minutes for two datapoints, and also when no datapoint arrives
(this DAG or the scheduler stopped). On the embedded default the figure is logged.

**Re-run.** Nothing to re-run: every run measures anew; a missed run is simply a missing datapoint.

## Triage
- `Alert-ELT-Delay` fired with a value: `dpc_elt` has not ended well since the last slot; follow
  `docs/runbook.md`, "Delayed run".
- Fired as missing data: this DAG is paused or failing, or the scheduler is down; look here first.
- This task failed: the log names the error type (CloudWatch permissions or the connection).

## Where to look
This task's log (the minutes and the last good end), the marker object, `docs/runbook.md`,
`docs/decisions.md` ("Operations seed").
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable

from dpc_elt.core.params import TIMEZONE
from dpc_elt.orchestration import maintenance

with DAG(
    dag_id="dpc_metrics",
    description="ELTExecutionDelay (minutes dpc_elt is overdue) to CloudWatch Custom/DPC every 5 minutes",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("*/5 * * * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2025, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=4),
    default_args={"owner": "dpc-elt", "retries": 0, "execution_timeout": timedelta(minutes=2)},
    tags=["dpc", "operations"],
):
    maintenance.elt_delay_task()
