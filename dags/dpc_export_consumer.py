"""
# dpc_export_consumer — the pattern for jobs that start when a month is exported

Scheduled on the Asset `dpc_elt_exports` (the export root of `dpc_elt`): Airflow runs it whenever
`export_parquet` has written one or more months, with one Asset event per month. Each event's extra
holds `yyyymm`, `uri` (the month's folder), `rows` and `manifest_sha256` (of its `_manifest.json`).
A training or reporting job copies this file, keeps the schedule and replaces `read_exported_months`
with its own work: read `<uri>/*.parquet` after its `_manifest.json`, skip a month whose
`manifest_sha256` it has already processed.

**Re-run.** Clearing a run processes the same events again: make the job idempotent per month.

## Triage
- No runs: `dpc_elt` has not exported since this DAG was unpaused (Assets → `dpc_elt_exports`).
- A run failed: the log names the month; clear it once the cause is fixed.

## Where to look
This task's log (one line per month), the Asset's events in the UI, `README.md` ("Downstream jobs").
"""

from __future__ import annotations

import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from dpc_elt.orchestration.assets import exports_asset

log = logging.getLogger(__name__)

with DAG(
    dag_id="dpc_export_consumer",
    description="Example downstream job: runs when dpc_elt has exported months (Asset dpc_elt_exports)",
    doc_md=__doc__,
    schedule=[exports_asset()],
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Tokyo"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "dpc-elt", "retries": 0},
    tags=["dpc", "example"],
):

    @task
    def read_exported_months(**context: Any) -> list[dict[str, Any]]:
        """One line per exported month this run was triggered for (counts and names only)."""
        months = [
            dict(event.extra)
            for events in context["triggering_asset_events"].values()
            for event in events
            if event.extra.get("yyyymm")
        ]
        for month in sorted(months, key=lambda m: m["yyyymm"]):
            log.info("month %s exported: %s rows at %s", month["yyyymm"], month["rows"], month["uri"])
        return months

    read_exported_months()
