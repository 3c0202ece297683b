"""
# dpc_maintenance_weekly — VACUUM and the manual-maintenance checks, Sunday 04:00 JST

**Redshift (production).** `vacuum_<schema>__<table>`: one `VACUUM` per table, each its own Data API
statement (VACUUM cannot run in a transaction), chained so one runs at a time; then
`check_table_health` (SVV_TABLE_INFO).
**Embedded (DuckDB).** `vacuum_warehouse` (CHECKPOINT, DuckDB's VACUUM equivalent), then
`check_table_health`. Every task takes the `dpc_warehouse` pool: maintenance never runs beside a load.

`check_table_health` alerts (Slack, or the outbox locally, and the log) when a table is over a
threshold of the operations design: unsorted or unused share of 20 % or more (VACUUM FULL
recommended), slice skew above 20 % (review the distribution key), 100 million rows or more changed
since the last ANALYZE (ANALYZE recommended). Thresholds live in `dpc_elt.ops.thresholds`.

**Re-run.** Safe at any time: clear the failed task (VACUUM is idempotent); a cleared `vacuum_*`
task goes on with the next table.

## Triage
- a `vacuum_*` task failed: usually a lock or the 600 s query limit; clear it, or run the statement
  from its doc by hand (see `docs/runbook.md`, "Storage pressure").
- `check_table_health` alerted: the notice names table, value and the command to run by hand.
- `vacuum_warehouse` failed with a locked warehouse: a pipeline run held the file; clear it.

## Where to look
Task logs (every table's numbers), `docs/runbook.md`, `docs/decisions.md` ("Operations seed").
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable

from dpc_elt.core.params import TIMEZONE
from dpc_elt.orchestration import maintenance

with DAG(
    dag_id="dpc_maintenance_weekly",
    description="Weekly VACUUM (one table at a time) and the VACUUM FULL / skew / ANALYZE checks",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("0 4 * * 0", timezone=TIMEZONE),
    start_date=pendulum.datetime(2025, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "dpc-elt", "retries": 0, "on_failure_callback": maintenance.notify_failure},
    tags=["dpc", "operations", "maintenance"],
):
    maintenance.weekly_tasks()
