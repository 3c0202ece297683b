"""One factory per Step Functions state: the DAG file calls these and only wires them.

Each factory returns the task (or task group) whose id is the ASL state's name in snake_case, with
the state's ``Retry`` block as Airflow retries and its ``Catch`` as trigger rules. The work is the
configured backend's (``dpc_elt.backends.get_backend``): the step operators below ask it and, where
the backend submitted the work to the warehouse, wait for it deferred. The month comes from the
validated manifest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import TaskGroup, TriggerRule, task

from dpc_elt.backends import get_backend
from dpc_elt.backends.base import Backend
from dpc_elt.core import copy_errors, formats, run_marker, settings
from dpc_elt.core.errors import ParameterError
from dpc_elt.core.lineage import StepLineage, storage_dataset
from dpc_elt.core.manifest import ValidatedManifest, month_uri
from dpc_elt.core.params import facility_of_params, month_of_context
from dpc_elt.notify import FAILURE_XCOM_KEY, Message, deliver, describe_failure
from dpc_elt.orchestration import assets, cosmos_config, manifest_events
from dpc_elt.orchestration.operators import BackendStepOperator
from dpc_elt.orchestration.retry import COPY_RAW_RETRY, VALIDATE_MANIFEST_RETRY

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


# doc_md of the steps, shown in the UI's task and group details (Airflow 3 TaskGroup takes doc_md; Cosmos'
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
MANIFEST_EVENT_DOC = """\
**manifest_event** (only where `DPC_MANIFEST_QUEUE_URL` is set) — for a run that a manifest event
started: re-queues the events of other months for the next runs, then compares the month's
`_manifest.json` (SHA-256) with the one loaded last. The same manifest: *nothing to do* — the rest of
the run is skipped and the run ends green (the log says so). New or changed: the run goes on. Scheduled
and manual runs always go on (they reload as before).

**Reload a month anyway:** trigger it with `{"yyyymm": "<YYYYMM>"}`.
"""
BUILD_STAGE_DOC = """\
**BuildStage** — one `dbt run` of the stage models (`build_stage.dbt_run`): typed y1 cases and segments
and D lines, EF lines counted per stay (the typed EF lines are a view), incremental per `yyyymm` (each
model deletes the month, then inserts it). The task log times every model.

**Failure** runs `rollback_stage`, which deletes the month from every stage table, then
`notify_failure`; the run stays failed. The task log holds dbt's error (the notice only its type).

**Re-run:** fix the model or the data, then *Clear* this group with downstream; running the month's
stage any number of times gives the same rows.
"""
BUILD_MART_DOC = """\
**BuildMart** — one `dbt build` of the seeds, intermediate and mart models without their tests
(`build_mart.dbt_build`): `mart.fct_cases` (DPC code, MDC, length of stay, points), the dimensions and
the `ref` seeds. Tables are rebuilt whole, so every run leaves the same result.

**Failure** ends in `notify_failure` and leaves stage as loaded; mart keeps its previous build where
the failed model did not complete. The task log holds dbt's error.

**Re-run:** *Clear* this group with downstream (`compute_readmit` onwards must follow so the
readmission table and the export match the mart again).
"""
COPY_RAW_DOC = """\
**CopyRaw** — every listed file is checked line by line and transcoded (cp932 → UTF-8), then the month
is deleted from the three raw tables and loaded again, all in one transaction: embedded, one DuckDB
transaction; production, the files are staged on S3 and one Data API batch deletes and COPYs all three
file types (the task waits for it deferred, holding no worker slot).

**Failure:** a rejected line names file, line and rule (never the value) and nothing of the month is
changed; a busy warehouse (DuckDB's file lock, Data API throttling, a lost concurrent transaction) is
retried 4 times.

**Re-run:** fix the delivery if it was rejected, then *Clear* this task with downstream.
"""


def _checked(context: Any) -> dict[str, Any]:
    """What check_manifest returned for this run: the month and the validated manifest."""
    checked = context["ti"].xcom_pull(task_ids=CHECK_MANIFEST_TASK_ID)
    if not checked:
        raise RuntimeError("validate_manifest.check_manifest left no result: clear validate_manifest too")
    return checked


def _facility(checked: dict[str, Any]) -> str | None:
    """The facility of a one-facility reload, as check_manifest validated it; None for the whole month."""
    return checked["manifest"].get("facility_cd") or None


def _breadcrumbs(context: Any) -> list[dict[str, Any]]:
    """Terminal task instances of this run: task id, state, duration (no values)."""
    ti = context["ti"]
    return list(ti.get_task_breadcrumbs(dag_id=ti.dag_id, run_id=ti.run_id))


# ------------------------------------------------------------------------------------------ the steps


def validate_manifest() -> TaskGroup:
    """ValidateManifest: wait for ``_manifest.json`` (deferrable), then validate all of it — under the raw
    root (any fsspec URI), or on S3 through the Airflow AWS connection in production."""
    with TaskGroup(
        group_id="validate_manifest",
        tooltip="Wait for the month's _manifest.json, then check schema, names, sizes, SHA-256 and counts",
        doc_md=VALIDATE_MANIFEST_DOC,
    ) as group:
        wait = get_backend().manifest_sensor(task_id="wait_for_manifest", **VALIDATE_MANIFEST_RETRY)

        @task(task_id="check_manifest", **VALIDATE_MANIFEST_RETRY)
        def check_manifest(**context: Any) -> dict[str, Any]:
            """Validate the manifest and every file it lists: all or nothing, never retried on bad input."""
            yyyymm = month_of_context(context)
            facility_cd = facility_of_params(context["params"])
            manifest = get_backend().validate_month(yyyymm, facility_cd)
            for name in manifest.unlisted:
                log.warning("ignored %s: in the month folder but not listed in _manifest.json", name)
            only = f" of facility {facility_cd} (a one-facility reload)" if facility_cd else ""
            log.info("manifest of %s valid: %d files%s", yyyymm, len(manifest.files), only)
            return {"yyyymm": yyyymm, "manifest": manifest.to_dict()}

        wait >> check_manifest()
        if manifest_events.event_driven():
            manifest_event() >> wait
    return group


def manifest_event():
    """The short-circuit at the start of an event-driven deployment's run (``manifest_events.start_or_skip``):
    it succeeds either way, so the events it re-queues for other months are recorded."""

    @task.short_circuit(
        task_id="manifest_event",
        outlets=[manifest_events.REQUEUED_MANIFESTS],
        doc_md=MANIFEST_EVENT_DOC,
        **VALIDATE_MANIFEST_RETRY,
    )
    def manifest_event_task(**context: Any) -> bool:
        return manifest_events.start_or_skip(context)

    return manifest_event_task()


class CopyRawOperator(BackendStepOperator):
    """CopyRaw: delete the month from every raw table and load the validated files, one transaction."""

    ui_color = "#fde8d7"

    @contextmanager
    def guarded(self) -> Iterator[None]:
        with copy_errors.copy_errors_reported():  # the CopyErrorCount log line, then the error
            yield

    def start(self, context: Any, backend: Backend) -> Any:
        checked = _checked(context)
        # The month is about to change: no manifest counts as loaded until this run ends well.
        record = run_marker.loaded_manifest_uri(settings.get_settings(), checked["yyyymm"])
        run_marker.forget_loaded_manifest(*backend.filesystem(record))
        return backend.load_month(checked["yyyymm"], ValidatedManifest.from_dict(checked["manifest"]))

    def finish(self, context: Any, result: dict[str, int]) -> dict[str, int]:
        log.info("loaded %s: %s", _checked(context)["yyyymm"], result)
        return result

    def lineage(self, context: Any, backend: Backend, result: Any) -> StepLineage:
        """The month's listed files in, the raw tables out."""
        checked = _checked(context)
        folder = month_uri(settings.get_settings().raw_root, checked["yyyymm"])
        files = [storage_dataset(f"{folder}/{listed['path']}") for listed in checked["manifest"]["files"]]
        tables = [backend.table_dataset(settings.RAW_SCHEMA, layout.raw_table) for layout in formats.LAYOUTS.values()]
        return StepLineage(inputs=files, outputs=tables)


def copy_raw() -> CopyRawOperator:
    """CopyRaw: per file type, delete the month then load it — one transaction for the month."""
    return CopyRawOperator(task_id="copy_raw", pool=settings.WAREHOUSE_POOL, doc_md=COPY_RAW_DOC, **COPY_RAW_RETRY)


def build_stage():
    """BuildStage: ``dbt run --select stage`` (one dbt invocation), incremental per month."""
    return cosmos_config.dbt_step("build_stage", "run", cosmos_config.STAGE_SELECT, BUILD_STAGE_DOC)


class RollbackStageOperator(BackendStepOperator):
    """RollbackStage: after a failed stage build, delete the month from every stage table."""

    def start(self, context: Any, backend: Backend) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        failed = [
            crumb["task_id"]
            for crumb in _breadcrumbs(context)
            if crumb["task_id"].startswith("build_stage.") and crumb["state"] == "failed"
        ]
        if not failed:
            raise AirflowSkipException("no build_stage task failed: nothing to roll back")
        log.info("rolling back after %s failed", failed)
        return backend.rollback_stage(month_of_context(context), _facility(_checked(context)))

    def finish(self, context: Any, result: dict[str, int]) -> dict[str, int]:
        log.info("rolled back %s: rows deleted %s", month_of_context(context), result)
        return result


def rollback_stage() -> RollbackStageOperator:
    """RollbackStage: ONE_FAILED on the stage group, whose one task runs the whole stage, so it starts only
    once the stage is done; on a clean run the scheduler skips it without starting a process. Upstream
    failed (an earlier step failed) also triggers it: it then finds no failed stage task and skips."""
    return RollbackStageOperator(
        task_id="rollback_stage",
        trigger_rule=TriggerRule.ONE_FAILED,
        pool=settings.WAREHOUSE_POOL,
        doc_md="Deletes the month from every stage table after a failed `build_stage` (skipped otherwise).",
    )


def build_mart():
    """BuildMart: seeds, intermediate and mart models (one ``dbt build`` without tests)."""
    return cosmos_config.dbt_step(
        "build_mart", "build", cosmos_config.MART_SELECT, BUILD_MART_DOC, dbt_cmd_flags=cosmos_config.MODELS_AND_SEEDS
    )


class ComputeReadmitOperator(BackendStepOperator):
    """ComputeReadmit: the readmission SQL makes mart.fact_case_summary equal the contract again."""

    def start(self, context: Any, backend: Backend) -> Any:
        checked = _checked(context)
        return backend.compute_readmit(checked["yyyymm"], _facility(checked))

    def lineage(self, context: Any, backend: Backend, result: Any) -> StepLineage:
        return StepLineage(
            inputs=[backend.table_dataset(settings.MART_SCHEMA, "fct_cases")],
            outputs=[backend.table_dataset(settings.MART_SCHEMA, settings.SUMMARY_TABLE)],
        )

    def finish(self, context: Any, result: list[str]) -> list[str]:
        log.info("fact_case_summary recomputed for %s; months changed: %s", _checked(context)["yyyymm"], result)
        return result


def compute_readmit() -> ComputeReadmitOperator:
    return ComputeReadmitOperator(
        task_id="compute_readmit",
        pool=settings.WAREHOUSE_POOL,
        doc_md="Recomputes the 7/30-day readmissions of every patient the month touches (one transaction).",
    )


def dbt_tests():
    """DbtTests: ``dbt test`` — schema, data and unit tests of stage and mart."""
    return cosmos_config.dbt_test_task("dbt_tests")


class ExportParquetOperator(BackendStepOperator):
    """ExportParquet: clear each changed month's output prefix, then write its Parquet and manifest,
    then the month's quality report (``_quality_report.html``, after the manifest: not listed in it)."""

    def start(self, context: Any, backend: Backend) -> Any:
        yyyymm = _checked(context)["yyyymm"]
        months = context["ti"].xcom_pull(task_ids="compute_readmit") or [yyyymm]
        return backend.export_months(sorted(set(months) | {yyyymm}))

    def finish(self, context: Any, result: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from dpc_elt.ops import quality_report

        cfg = settings.get_settings()
        exports = assets.exports_asset(cfg)
        for month in result:
            log.info("exported %s: %s", month["uri"], [(f["path"], f["rows"]) for f in month["files"]])
            # The export cleared the month's folder: every month written gets its report again.
            month["report"] = quality_report.write_report(month["yyyymm"], cfg)
            # One Asset event per month written, for the jobs scheduled on the exports.
            context["outlet_events"][assets.EXPORTED_MONTHS].add(exports, extra=assets.month_event_extra(month))
        return result

    def lineage(self, context: Any, backend: Backend, result: Any) -> StepLineage:
        """The summary table in, each written month's files out."""
        written = [
            storage_dataset(f"{month['uri'].rstrip('/')}/{file['path']}") for month in result for file in month["files"]
        ]
        summary = backend.table_dataset(settings.MART_SCHEMA, settings.SUMMARY_TABLE)
        return StepLineage(inputs=[summary], outputs=written)


def export_parquet() -> ExportParquetOperator:
    return ExportParquetOperator(
        task_id="export_parquet",
        pool=settings.WAREHOUSE_POOL,
        outlets=[assets.EXPORTED_MONTHS],
        doc_md="Rewrites the Parquet files, `_manifest.json` and quality report of every month whose rows changed.",
    )


# ---------------------------------------------------------------------------------------- the notices


def _message(context: Any, status: str, yyyymm: str | None) -> Message:
    ti = context["ti"]
    return Message(
        status=status,
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        yyyymm=yyyymm,
        environment=settings.get_settings().environment,
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
        checked = _checked(context)
        backend = get_backend()
        message = _message(context, "SUCCESS", checked["yyyymm"])
        if facility_cd := _facility(checked):
            message.notes.append(f"one-facility reload: only facility {facility_cd}'s rows of the month were replaced")
        message.counts = backend.month_counts(checked["yyyymm"])
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
        ti, cfg, now = context["ti"], settings.get_settings(), datetime.now(UTC)
        end = run_marker.RunEnd(ti.dag_id, ti.run_id, "loaded", now, checked["yyyymm"])  # ELTExecutionDelay
        run_marker.write_run_end(*backend.filesystem(run_marker.run_marker_uri(cfg)), end)
        # What a repeated manifest event is told by; after a one-facility reload the month holds other
        # facilities' earlier loads, so no manifest counts as loaded (copy_raw forgot the record).
        sha = checked["manifest"].get("manifest_sha256") if not _facility(checked) else ""
        if sha:
            loaded = run_marker.LoadedManifest(checked["yyyymm"], sha, ti.dag_id, ti.run_id, now)
            record = run_marker.loaded_manifest_uri(cfg, checked["yyyymm"])
            run_marker.write_loaded_manifest(*backend.filesystem(record), loaded)
        return where

    return notify_success_task()


def notify_failure():
    """NotifyFailure: which step failed, its error type and the log link; runs after any rollback."""

    @task(task_id="notify_failure", trigger_rule=TriggerRule.ALL_DONE)
    def notify_failure_task(**context: Any) -> str:
        from airflow.sdk.exceptions import AirflowSkipException

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
            facility_cd = context["params"].get("facility_cd")  # rollback_stage validated it
            removed = f"facility {facility_cd}'s rows of the month" if facility_cd else "the month"
            message.notes.append(f"rollback_stage removed {removed} from the stage tables")
        return deliver(message, context)

    return notify_failure_task()
