"""
# dpc_elt — one month of DPC data, raw files to Parquet

Replaces the Step Functions state machine of the pipeline design task for task (one task or task
group per ASL state, same transitions and retries):

`validate_manifest` → `copy_raw` → `build_stage` → `build_mart` → `compute_readmit` → `dbt_tests`
→ `export_parquet` → `notify_success`; a failed `build_stage` runs `rollback_stage`; any failed
step ends in `notify_failure`, and the run stays failed.

**Month.** `yyyymm` in the trigger form; empty means the month before the logical date (JST), which is
what the daily 03:00 run loads. A scheduled run whose manifest has not arrived ends skipped.

**One facility.** `facility_cd` in the trigger form (9 digits) reloads only that hospital's resubmitted
files: its rows of the month are replaced in raw, stage and mart, its patients' readmissions recomputed,
and the months whose rows changed exported again.

**Start when the manifest lands** (production, `DPC_MANIFEST_QUEUE_URL` set): the schedule is the 03:00
cron OR the Asset `dpc_elt_manifests`, fed by the bucket's S3 events through SQS; such a run loads the
month its `_manifest.json` key names, and `validate_manifest.manifest_event` ends it green with nothing
done when that manifest (SHA-256) is the one loaded last.

**Re-run / backfill.** Every step replaces exactly one month, so any task can be cleared and any month
re-run or backfilled in any order: `make run-month YYYYMM=202504`, `make backfill FROM=202501 TO=202506`,
or `airflow backfill create --dag-id dpc_elt --from-date … --to-date …`.

## Triage
- `validate_manifest` failed: the message names the file and the rule; fix the delivery, clear the group.
- `copy_raw` failed: the message names file, line and rule; nothing of the month was loaded.
- `build_stage` failed: the month was rolled back from stage; fix the model, clear `build_stage`.
- later steps: clear the failed task; every step is idempotent per month.

## Where to look
Task logs, `docs/runbook.md`, `docs/decisions.md`; outputs under `processed_root/yyyymm=<YYYYMM>/`:
the Parquet files, `_manifest.json` and `_quality_report.html` (rows per file and table, cases and
7/30-day readmission rates per facility and MDC; linked from the success notice).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, chain

from dpc_elt.core.params import TIMEZONE, param_schemas
from dpc_elt.notify import record_failure
from dpc_elt.orchestration import manifest_events, steps

with DAG(
    dag_id="dpc_elt",
    description="DPC monthly ELT: manifest → raw → stage → mart → readmission → tests → Parquet → notice",
    doc_md=__doc__,
    schedule=manifest_events.schedule(),  # 03:00 JST; with a manifest queue, also when a manifest lands
    start_date=pendulum.datetime(2025, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    params={name: Param(**schema) for name, schema in param_schemas().items()},
    default_args={"owner": "dpc-elt", "retries": 0, "on_failure_callback": record_failure},
    tags=["dpc", "elt"],
):
    validate_manifest = steps.validate_manifest()
    copy_raw = steps.copy_raw()
    build_stage = steps.build_stage()
    rollback_stage = steps.rollback_stage()
    build_mart = steps.build_mart()
    compute_readmit = steps.compute_readmit()
    dbt_tests = steps.dbt_tests()
    export_parquet = steps.export_parquet()
    notify_success = steps.notify_success()
    notify_failure = steps.notify_failure()

    chain(
        validate_manifest,
        copy_raw,
        build_stage,
        build_mart,
        compute_readmit,
        dbt_tests,
        export_parquet,
        notify_success,
    )
    # BuildStage.Catch → RollbackStage → NotifyFailure; every other Catch → NotifyFailure.
    build_stage >> rollback_stage
    notify_failure << [validate_manifest, copy_raw, rollback_stage, build_mart, compute_readmit]
    notify_failure << [dbt_tests, export_parquet]
