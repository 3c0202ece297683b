"""One factory per Step Functions state: the DAG file calls these and only wires them.

Each factory returns the task (or task group) whose id is the ASL state's name in snake_case, with
the state's ``Retry`` block as Airflow retries and its ``Catch`` as trigger rules. Work happens in
the backend module for the configured warehouse; the month comes from the validated manifest.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import TaskGroup, TriggerRule, task
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

from dpc_elt import settings
from dpc_elt.errors import SAFE_MESSAGE_ERRORS, WarehouseBusyError

log = logging.getLogger(__name__)

CHECK_MANIFEST_TASK_ID = "validate_manifest.check_manifest"
STEP_IDS = (
    "validate_manifest",
    "copy_raw",
    "build_stage",
    "rollback_stage",
    "build_mart",
    "compute_readmit",
    "dbt_tests",
    "export_parquet",
)


# doc_md of the task groups, shown in the UI's group details (Airflow 3 TaskGroup takes doc_md; Cosmos'
# DbtTaskGroup passes TaskGroup's arguments through, and the factories set it on the built group).
VALIDATE_MANIFEST_DOC = """\
**ValidateManifest** — waits for `<raw_root>/yyyymm=<YYYYMM>/_manifest.json` (deferred: no worker slot
is held while waiting), then `check_manifest` validates the manifest and every file it lists: JSON
Schema, file names, sizes, SHA-256, record counts, cp932 bytes. Nothing is written anywhere.

**Failure** means the delivery is wrong (the message names file, line and rule) — never retried — or
storage could not be read (retried 3 times). A scheduled run whose manifest did not come within
`manifest_wait_minutes` ends *skipped*; a manual one fails.

**Re-run:** fix or replace the delivery, then *Clear* this group (with downstream): the sensor looks
again and the month is validated from scratch.
"""
BUILD_STAGE_DOC = """\
**BuildStage** — `dbt run` of the stage models (one Cosmos task per model): typed rows, sentinel dates
to NULL, y1 pivoted per case; incremental per `yyyymm` (each model deletes the month, then inserts it).

**Failure** of any model runs `rollback_stage`, which deletes the month from every stage table, then
`notify_failure`; the run stays failed. The task log holds dbt's error (the notice only its type).

**Re-run:** fix the model or the data, then *Clear* the failed task (or this whole group) with
downstream; clearing any model of the month any number of times gives the same rows.
"""
BUILD_MART_DOC = """\
**BuildMart** — `dbt seed` + `dbt run` of the intermediate and mart models (one Cosmos task per node):
`mart.fct_cases` (DPC code, MDC, length of stay, points), the dimensions and the `ref` seeds.
Tables are rebuilt whole, so every run leaves the same result.

**Failure** ends in `notify_failure` and leaves stage as loaded; mart keeps its previous build where
the failed model did not complete. The task log holds dbt's error.

**Re-run:** *Clear* the failed task, or this group, with downstream (`compute_readmit` onwards must
follow so the readmission table and the export match the mart again).
"""
COPY_RAW_DOC = """\
**CopyRaw** (production) — `transcode` streams every listed file from S3 (cp932 → UTF-8, every line
checked) to `staging/`, then one Data API batch per file type deletes the month and COPYs it back in
one transaction.

**Failure:** a rejected line names file, line and column (never the value) and nothing of that file
type is changed; throttling and lost concurrent transactions are retried 4 times.

**Re-run:** fix the delivery if it was rejected, then *Clear* this group with downstream.
"""


def _documented(group: Any, doc_md: str) -> Any:
    """Give a task group its UI documentation (and a tooltip, if it has none)."""
    group.doc_md = doc_md
    if not group.tooltip:
        group.tooltip = doc_md.split("—", 1)[-1].split(".", 1)[0].strip()
    return group


def _retry(attempts: int, interval_seconds: int, backoff_rate: float, transient: list[Any]) -> dict[str, Any]:
    """An ASL ``Retry`` block: retry only the transient errors it names, never bad input."""
    return {
        "retries": attempts,
        "retry_delay": timedelta(seconds=interval_seconds),
        "retry_exponential_backoff": backoff_rate,
        "retry_policy": ExceptionRetryPolicy(
            rules=[
                RetryRule(exception=list(SAFE_MESSAGE_ERRORS), action=RetryAction.FAIL),
                RetryRule(exception=transient, action=RetryAction.RETRY),
            ],
            default=RetryAction.FAIL,
        ),
    }


# ValidateManifest.Retry: Lambda service errors, 10 s, 3 attempts, ×2 — here: storage I/O errors.
VALIDATE_MANIFEST_RETRY = _retry(3, 10, 2.0, [OSError, TimeoutError])
# CopyRaw.Retry: throttling and Data API errors, 30 s, 4 attempts, ×2 — here: a busy warehouse (the
# DuckDB file lock; on Redshift, Data API throttling and lost concurrent transactions, which
# dpc_elt.production raises as WarehouseBusyError).
COPY_RAW_RETRY = _retry(4, 30, 2.0, [WarehouseBusyError, TimeoutError])


def _settings() -> settings.Settings:
    return settings.get_settings()


def _warehouse():
    """The module that does the work for the configured backend."""
    import importlib

    return importlib.import_module(settings.BACKEND_MODULES[_settings().backend])


def _checked(context: Any) -> dict[str, Any]:
    """What check_manifest returned for this run: the month and the validated manifest."""
    checked = context["ti"].xcom_pull(task_ids=CHECK_MANIFEST_TASK_ID)
    if not checked:
        raise RuntimeError("validate_manifest.check_manifest left no result: clear validate_manifest too")
    return checked


def _breadcrumbs(context: Any) -> list[dict[str, Any]]:
    """Terminal task instances of this run: task id, state, duration (no values)."""
    ti = context["ti"]
    return list(ti.get_task_breadcrumbs(dag_id=ti.dag_id, run_id=ti.run_id))


def validate_manifest() -> TaskGroup:
    """ValidateManifest: wait for ``_manifest.json`` (deferrable), then validate all of it — under the raw
    root (any fsspec URI), or on S3 through the Airflow AWS connection in production."""
    from dpc_elt.sensors import ManifestSensor

    cfg = _settings()
    with TaskGroup(
        group_id="validate_manifest",
        tooltip="Wait for the month's _manifest.json, then check schema, names, sizes, SHA-256 and counts",
        doc_md=VALIDATE_MANIFEST_DOC,
    ) as group:
        if cfg.backend == settings.PRODUCTION:  # S3KeySensor through the AWS connection
            from dpc_elt import production

            wait = production.manifest_sensor(cfg, **VALIDATE_MANIFEST_RETRY)
        else:
            wait = ManifestSensor(
                task_id="wait_for_manifest",
                raw_root=cfg.raw_root,
                poke_seconds=cfg.manifest_poke_seconds,
                doc_md="Waits (deferred, no worker slot held) for `<raw_root>/yyyymm=<YYYYMM>/_manifest.json`.",
                **VALIDATE_MANIFEST_RETRY,
            )

        @task(task_id="check_manifest", **VALIDATE_MANIFEST_RETRY)
        def check_manifest(**context: Any) -> dict[str, Any]:
            """Validate the manifest and every file it lists: all or nothing, never retried on bad input."""
            from dpc_elt.params import month_of_context

            yyyymm = month_of_context(context)
            manifest = _validate_month(yyyymm, _settings())
            for name in manifest.unlisted:
                log.warning("ignored %s: in the month folder but not listed in _manifest.json", name)
            log.info("manifest of %s valid: %d files", yyyymm, len(manifest.files))
            return {"yyyymm": yyyymm, "manifest": manifest.to_dict()}

        wait >> check_manifest()
    return group


def _validate_month(yyyymm: str, cfg: settings.Settings) -> Any:
    """The same validation for both backends; production reads S3 through the AWS connection."""
    if cfg.backend == settings.PRODUCTION:
        from dpc_elt import production

        return production.validate_month_on_s3(yyyymm, cfg)
    from dpc_elt.manifest import validate_month

    return validate_month(cfg.raw_root, yyyymm)


def copy_raw():
    """CopyRaw: per file type, delete the month then load it — one transaction for the month."""
    if _settings().backend == settings.PRODUCTION:  # transcode + one Data API batch per file type
        from dpc_elt import production

        return _documented(production.copy_raw(), COPY_RAW_DOC)

    @task(task_id="copy_raw", pool=settings.WAREHOUSE_POOL, **COPY_RAW_RETRY)
    def copy_raw_task(**context: Any) -> dict[str, int]:
        from dpc_elt import operations
        from dpc_elt.manifest import ValidatedManifest

        checked = _checked(context)
        manifest = ValidatedManifest.from_dict(checked["manifest"])
        with operations.copy_errors_reported():  # the CopyErrorCount log line, then the error
            counts = _warehouse().load_raw_month(checked["yyyymm"], manifest, _settings())
        log.info("loaded %s: %s", checked["yyyymm"], counts)
        return counts

    return copy_raw_task()


def build_stage():
    """BuildStage: ``dbt run --select stage`` as a Cosmos task group, incremental per month."""
    from dpc_elt import cosmos_config

    group = cosmos_config.dbt_task_group(
        "build_stage",
        cosmos_config.STAGE_SELECT,
        "Stage models: typed rows, sentinel dates to NULL, y1 pivoted per case, incremental per yyyymm",
    )
    return _documented(group, BUILD_STAGE_DOC)


def rollback_stage():
    """RollbackStage: after a failed stage build, delete the month from every stage table."""

    @task(task_id="rollback_stage", trigger_rule=TriggerRule.ONE_FAILED, pool=settings.WAREHOUSE_POOL)
    def rollback_stage_task(**context: Any) -> dict[str, int]:
        from airflow.sdk.exceptions import AirflowSkipException

        from dpc_elt.params import month_of_context

        failed = [
            crumb["task_id"]
            for crumb in _breadcrumbs(context)
            if crumb["task_id"].startswith("build_stage.") and crumb["state"] == "failed"
        ]
        if not failed:
            raise AirflowSkipException("build_stage did not run (an earlier step failed): nothing to roll back")
        yyyymm = month_of_context(context)
        deleted = _warehouse().rollback_stage(yyyymm, _settings())
        log.info("rolled back %s after %s failed: rows deleted %s", yyyymm, failed, deleted)
        return deleted

    return rollback_stage_task()


def build_mart():
    """BuildMart: seeds, intermediate and mart models as a Cosmos task group."""
    from dpc_elt import cosmos_config

    group = cosmos_config.dbt_task_group(
        "build_mart",
        cosmos_config.MART_SELECT,
        "Mart models: case facts (DPC code, MDC, length of stay, points), dimensions and ref seeds",
    )
    return _documented(group, BUILD_MART_DOC)


def compute_readmit():
    """ComputeReadmit: the readmission SQL makes mart.fact_case_summary equal the contract again."""

    @task(task_id="compute_readmit", pool=settings.WAREHOUSE_POOL)
    def compute_readmit_task(**context: Any) -> list[str]:
        yyyymm = _checked(context)["yyyymm"]
        months = _warehouse().compute_readmit(yyyymm, _settings())
        log.info("fact_case_summary recomputed for %s; months changed: %s", yyyymm, months)
        return months

    return compute_readmit_task()


def dbt_tests():
    """DbtTests: ``dbt test`` — schema, data and unit tests of stage and mart."""
    from dpc_elt import cosmos_config

    return cosmos_config.dbt_test_task("dbt_tests")


def export_parquet():
    """ExportParquet: clear each changed month's output prefix, then write its Parquet and manifest,
    then the month's quality report (``_quality_report.html``, after the manifest: not listed in it)."""

    @task(task_id="export_parquet", pool=settings.WAREHOUSE_POOL)
    def export_parquet_task(**context: Any) -> list[dict[str, Any]]:
        from dpc_elt import quality_report

        cfg = _settings()
        yyyymm = _checked(context)["yyyymm"]
        months = context["ti"].xcom_pull(task_ids="compute_readmit") or [yyyymm]
        written = _warehouse().export_months(sorted(set(months) | {yyyymm}), cfg)
        for month in written:
            log.info("exported %s: %s", month["uri"], [(f["path"], f["rows"]) for f in month["files"]])
            # The export cleared the month's folder: every month written gets its report again.
            month["report"] = quality_report.write_report(month["yyyymm"], cfg)
        return written

    return export_parquet_task()


def _message(context: Any, status: str, yyyymm: str | None):
    from dpc_elt.notify import Message

    ti = context["ti"]
    return Message(
        status=status,
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        yyyymm=yyyymm,
        environment=_settings().environment,
    )


def _step_durations(context: Any) -> dict[str, float]:
    """Seconds per ASL state (task group time is the sum of its tasks)."""
    durations: dict[str, float] = {}
    for crumb in _breadcrumbs(context):
        step = crumb["task_id"].split(".", 1)[0]
        if step in STEP_IDS and crumb["state"] == "success" and crumb.get("duration") is not None:
            durations[step] = round(durations.get(step, 0.0) + float(crumb["duration"]), 1)
    return {step: durations[step] for step in STEP_IDS if step in durations}


def notify_success():
    """NotifySuccess: counts per table, durations and the export locations."""

    @task(task_id="notify_success", pool=settings.WAREHOUSE_POOL)
    def notify_success_task(**context: Any) -> str:
        from dpc_elt import operations
        from dpc_elt.notify import deliver

        checked = _checked(context)
        message = _message(context, "SUCCESS", checked["yyyymm"])
        message.counts = _warehouse().month_counts(checked["yyyymm"], _settings())
        message.durations = _step_durations(context)
        exported = context["ti"].xcom_pull(task_ids="export_parquet") or []
        message.exports = [month["uri"] for month in exported]
        message.report = next((m.get("report", "") for m in exported if m.get("yyyymm") == checked["yyyymm"]), "")
        unlisted = checked["manifest"].get("unlisted", [])
        if unlisted:
            message.notes.append(
                f"{len(unlisted)} file(s) in the month folder were not in the manifest and were ignored"
            )
        where = deliver(message, context)
        operations.record_run_end(context, "loaded", yyyymm=checked["yyyymm"])  # ELTExecutionDelay
        return where

    return notify_success_task()


def notify_failure():
    """NotifyFailure: which step failed, its error type and the log link; runs after any rollback."""

    @task(task_id="notify_failure", trigger_rule=TriggerRule.ALL_DONE)
    def notify_failure_task(**context: Any) -> str:
        from airflow.sdk.exceptions import AirflowSkipException

        from dpc_elt.errors import ParameterError
        from dpc_elt.notify import FAILURE_XCOM_KEY, deliver, describe_failure
        from dpc_elt.params import month_of_context

        failed = [crumb["task_id"] for crumb in _breadcrumbs(context) if crumb["state"] == "failed"]
        if not failed:
            raise AirflowSkipException("no step failed")
        try:
            yyyymm = month_of_context(context)
        except ParameterError:
            yyyymm = None
        message = _message(context, "FAILURE", yyyymm)
        ti = context["ti"]
        for task_id in failed:
            recorded = ti.xcom_pull(task_ids=task_id, key=FAILURE_XCOM_KEY)
            message.failures.append(recorded or describe_failure(task_id, None, None))
        if any(task_id.startswith("build_stage.") for task_id in failed):
            message.notes.append("rollback_stage removed the month from the stage tables")
        return deliver(message, context)

    return notify_failure_task()
