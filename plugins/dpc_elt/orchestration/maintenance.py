"""Task factories of the operations DAGs — ``dpc_metrics``, ``dpc_maintenance_weekly`` and
``dpc_maintenance_monthly``. The work is the backend's: what to VACUUM and to analyze for compression
(one task per target, chained so one runs at a time: VACUUM cannot run in a transaction and takes
locks), table health, and where the metric goes. On Redshift each statement is its own Data API call
and the task waits for it deferred. Every task that opens the warehouse takes the ``dpc_warehouse``
pool, so maintenance never runs beside a load.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import chain, task

from dpc_elt.backends import get_backend
from dpc_elt.backends.base import Backend
from dpc_elt.core import settings
from dpc_elt.core.params import JST
from dpc_elt.notify import Message, deliver, describe_failure
from dpc_elt.ops import health, metrics, thresholds
from dpc_elt.orchestration.operators import BackendStepOperator

log = logging.getLogger(__name__)

HEALTH_TASK_ID = "check_table_health"
COMPRESSION_TASK_ID = "report_compression"


def _month_of(context: Any) -> str:
    """The run's month (JST) for the notice subject; maintenance concerns the warehouse, not a month."""
    moment = context.get("logical_date") or getattr(context.get("dag_run"), "run_after", None) or datetime.now(UTC)
    return moment.astimezone(JST).strftime("%Y%m")


def _deliver(context: Any, status: str, notes: list[str], counts: dict[str, int] | None = None) -> str:
    ti = context["ti"]
    cfg = settings.get_settings()
    message = Message(
        status=status, dag_id=ti.dag_id, run_id=ti.run_id, yyyymm=_month_of(context), environment=cfg.environment
    )
    message.notes = notes
    message.counts = counts or {}
    return deliver(message, context, cfg)


def notify_failure(context: Any) -> None:
    """``on_failure_callback`` of the maintenance and metric tasks: the task and its error type only."""
    ti = context["ti"]
    failure = describe_failure(ti.task_id, context.get("exception"), getattr(ti, "log_url", None))
    try:
        cfg = settings.get_settings()
        message = Message("FAILURE", ti.dag_id, ti.run_id, _month_of(context), cfg.environment, failures=[failure])
        deliver(message, context, cfg)
    except Exception:  # a callback must not hide the task's own failure
        log.exception("could not deliver the failure notice of %s", ti.task_id)


# === dpc_metrics ======================================================================================


def elt_delay_task():
    """``publish_elt_execution_delay``: compute ELTExecutionDelay; the backend publishes it (CloudWatch in
    production, the log on the embedded default). Reads one small object, never the warehouse."""

    @task(task_id="publish_elt_execution_delay", retries=0)
    def publish_elt_execution_delay() -> float:
        return metrics.measure_elt_delay(settings.get_settings())

    return publish_elt_execution_delay()


# === maintenance ======================================================================================


class VacuumOperator(BackendStepOperator):
    """VACUUM one target of the backend (a Redshift table; the DuckDB file)."""

    def __init__(self, *, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target

    def start(self, context: Any, backend: Backend) -> Any:
        return backend.vacuum(self.target)


class AnalyzeCompressionOperator(BackendStepOperator):
    """ANALYZE COMPRESSION of one target; returns its report lines."""

    def __init__(self, *, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target

    def start(self, context: Any, backend: Backend) -> Any:
        return backend.analyze_compression(self.target)


def _task_suffix(target: str) -> str:
    return target.replace(".", "__")


def alert_on_findings(found: list[health.Finding], checked: int, context: Any) -> list[str]:
    """Deliver an ALERT listing the findings, if any."""
    texts = [finding.text() for finding in found]
    if texts:
        log.warning("manual maintenance recommended:\n%s", "\n".join(texts))
        _deliver(context, "ALERT", ["*Manual maintenance recommended*", *texts])
    else:
        log.info("all %d tables within the thresholds", checked)
    return texts


def weekly_tasks() -> list:
    """``vacuum_<target>`` one at a time, then ``check_table_health`` (the seed's thresholds)."""
    backend = get_backend()
    vacuums = [
        VacuumOperator(task_id=f"vacuum_{_task_suffix(target)}", target=target, pool=settings.WAREHOUSE_POOL)
        for target in backend.vacuum_targets()
    ]

    @task(task_id=HEALTH_TASK_ID, pool=settings.WAREHOUSE_POOL)
    def check_table_health(**context: Any) -> list[str]:
        """Unused and unsorted shares, skew, rows changed since ANALYZE; alert on the seed's thresholds."""
        current = get_backend()
        tables = current.health()
        for item in tables:
            log.info("health %s", item)
        return alert_on_findings(health.evaluate_health(tables, current), len(tables), context)

    check = check_table_health()
    chain(*vacuums, check)
    return [*vacuums, check.operator]


def monthly_tasks() -> list:
    """``analyze_compression_<target>`` one at a time, then ``report_compression`` (Slack and the log)."""
    backend = get_backend()
    analyses = [
        AnalyzeCompressionOperator(
            task_id=f"analyze_compression_{_task_suffix(target)}", target=target, pool=settings.WAREHOUSE_POOL
        )
        for target in backend.compression_targets()
    ]
    task_ids = [operator.task_id for operator in analyses]

    @task(task_id=COMPRESSION_TASK_ID)
    def report_compression(**context: Any) -> list[str]:
        lines = [line for pulled in context["ti"].xcom_pull(task_ids=task_ids) or [] for line in pulled or []]
        for line in lines:
            log.info("compression: %s", line)
        shown = lines[: thresholds.COMPRESSION_REPORT_MAX_LINES]
        if len(lines) > len(shown):
            shown.append(f"… and {len(lines) - len(shown)} more in the task log")
        _deliver(context, "SUCCESS", ["*Monthly compression report*", *shown])
        return shown

    report = report_compression()
    chain(*analyses, report)
    return [*analyses, report.operator]
