"""The marker of the last ``dpc_elt`` run that ended well, which ``ELTExecutionDelay`` is computed from.

A run *ends well* when it loaded its month (``notify_success``) or when a scheduled run found no
delivery within its wait (the manifest sensor's skip) — the two ways Airflow itself ends a run
``success``. Each such end writes ``<processed_root>/_ops/dpc_elt_last_run.json`` (a ``_`` folder that
Parquet readers skip); ``dpc_elt.ops.metrics`` reads it every 5 minutes. Reading one small object needs
neither the Airflow metadata database nor the warehouse. The caller passes the filesystem
(``Backend.filesystem``): S3 through the Airflow AWS connection in production.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from dpc_elt.core import settings

log = logging.getLogger(__name__)

RUN_MARKER_NAME = "_ops/dpc_elt_last_run.json"
OUTCOMES = ("loaded", "not_delivered")


@dataclass(frozen=True)
class RunEnd:
    """A dpc_elt run that ended well: its month loaded, or (scheduled) nothing delivered in time."""

    dag_id: str
    run_id: str
    outcome: str
    ended_at: datetime
    yyyymm: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ended_at": self.ended_at.astimezone(UTC).isoformat(timespec="seconds")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunEnd:
        ended_at = datetime.fromisoformat(data["ended_at"])
        if ended_at.tzinfo is None:
            raise ValueError("ended_at has no time zone")
        if data["outcome"] not in OUTCOMES:
            raise ValueError(f"unknown outcome {data['outcome']!r}")
        return cls(data["dag_id"], data["run_id"], data["outcome"], ended_at, data.get("yyyymm"))


def run_marker_uri(cfg: settings.Settings) -> str:
    """Beside the exports, in a ``_``-prefixed folder that Parquet readers skip."""
    return f"{cfg.processed_root.rstrip('/')}/{RUN_MARKER_NAME}"


def write_run_end(fs: Any, path: str, end: RunEnd) -> RunEnd:
    """Replace the marker: a reader sees the old one or the new one, never half of one."""
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    partial = f"{path}.partial"
    with fs.open(partial, "w") as handle:
        json.dump(end.to_dict(), handle)
    fs.mv(partial, path)
    log.info("recorded the end of %s %s: %s at %s", end.dag_id, end.run_id, end.outcome, end.to_dict()["ended_at"])
    return end


def read_run_end(fs: Any, path: str) -> RunEnd | None:
    """The newest good end, or None when no run ever ended well (or the marker is unreadable: then
    the delay counts from the DAG's start and alarms, which is what an unreadable marker deserves)."""
    if not fs.exists(path):
        return None
    try:
        with fs.open(path, "r") as handle:
            return RunEnd.from_dict(json.load(handle))
    except (ValueError, KeyError, TypeError) as error:
        log.warning("run marker %s is unreadable (%s): treating it as missing", path, type(error).__name__)
        return None
