"""One message for every channel (``dpc_elt.notify.channels``): Slack, SNS, the task log and the local
outbox. Messages carry counts, durations, task ids, error types and links — never patient data: only
errors of ``SAFE_MESSAGE_ERRORS`` (file, line, rule) are quoted, others by type alone.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from dpc_elt.core.errors import SAFE_MESSAGE_ERRORS

log = logging.getLogger(__name__)
FAILURE_XCOM_KEY = "dpc_failure"


@dataclass
class Message:
    status: str  # SUCCESS or FAILURE, as in the ASL's dpc-notify payload
    dag_id: str
    run_id: str
    yyyymm: str | None
    environment: str
    counts: dict[str, int] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: str = ""  # URI of the month's _quality_report.html (success only)

    @property
    def subject(self) -> str:
        mark = "✅" if self.status == "SUCCESS" else "❌"
        return f"{mark} {self.dag_id} {self.yyyymm or '(month unknown)'} {self.status} [{self.environment}]"

    def text(self) -> str:
        """Slack mrkdwn text, also what the log and the outbox show."""
        lines = [f"*{self.subject}*", f"run: `{self.run_id}`"]
        if self.counts:
            lines.append("*Rows for the month*")
            lines += [f"• {table}: {count:,}" for table, count in self.counts.items()]
        if self.durations:
            total = sum(self.durations.values())
            lines.append(f"*Durations* (task time {total:,.1f} s)")
            lines += [f"• {task}: {seconds:,.1f} s" for task, seconds in self.durations.items()]
        if self.exports:
            lines.append("*Exported*")
            lines += [f"• {uri}" for uri in self.exports]
        if self.report:
            lines.append(f"*Quality report*: {slack_link(self.report)}")
        for failure in self.failures:
            detail = f" — {failure['detail']}" if failure.get("detail") else ""
            lines.append(f"• failed task `{failure['task_id']}`: {failure['error_type']}{detail}")
            if failure.get("log_url"):
                lines.append(f"  log: {failure['log_url']}")
        lines += [f"_{note}_" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "subject": self.subject, "text": self.text()}


def slack_link(uri: str) -> str:
    """``uri`` as Slack mrkdwn: an http(s) URL becomes a link, anything else (a path, s3://) stays
    text; ``&``, ``<`` and ``>`` are escaped as Slack requires."""
    text = uri.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if uri.startswith(("https://", "http://")) and "|" not in uri:
        return f"<{text}|quality report>"
    return text


def describe_failure(task_id: str, error: BaseException | None, log_url: str | None) -> dict[str, Any]:
    """What may be said of a failure: the task, the error's type, and its text only if it is safe."""
    safe = isinstance(error, SAFE_MESSAGE_ERRORS)
    return {
        "task_id": task_id,
        "error_type": type(error).__name__ if error is not None else "unknown",
        "detail": str(error) if safe else "",
        "log_url": log_url or "",
    }


def record_failure(context: Any) -> None:
    """``on_failure_callback`` of every step: leave the failure's description for notify_failure."""
    ti = context["ti"]
    failure = describe_failure(ti.task_id, context.get("exception"), getattr(ti, "log_url", None))
    ti.xcom_push(key=FAILURE_XCOM_KEY, value=failure)
