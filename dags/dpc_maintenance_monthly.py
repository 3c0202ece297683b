"""
# dpc_maintenance_monthly — ANALYZE COMPRESSION report, the 15th at 05:00 JST

**Redshift (production).** `analyze_compression_<schema>__<table>`: one `ANALYZE COMPRESSION` per
table (it locks the table), chained one at a time, then `report_compression` sends the recommended
encodings, biggest saving first, to Slack and the log.
**Embedded (DuckDB).** `analyze_compression_warehouse` reads `pragma_storage_info` and reports the
columns DuckDB keeps uncompressed; `report_compression` sends it.

Mid-month, away from the early-month deliveries and the Sunday VACUUM. A report, not a change:
encodings change only through the dbt model config (or stay ENCODE AUTO).

**Re-run.** Safe at any time: clear the failed task.

## Triage
- an `analyze_compression_*` task failed: a lock or the 600 s query limit; clear it.
- `report_compression` failed: the log names the error type; the results stay in the XComs.

## Where to look
Task logs (every recommendation), the monthly notice, `docs/runbook.md`, `docs/decisions.md`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable

from dpc_elt.core.params import TIMEZONE
from dpc_elt.orchestration import maintenance

with DAG(
    dag_id="dpc_maintenance_monthly",
    description="Monthly ANALYZE COMPRESSION (one table at a time) and its recommendations",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("0 5 15 * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2025, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "dpc-elt", "retries": 0, "on_failure_callback": maintenance.notify_failure},
    tags=["dpc", "operations", "maintenance"],
):
    maintenance.monthly_tasks()
