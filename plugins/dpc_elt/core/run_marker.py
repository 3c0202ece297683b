"""The records ``dpc_elt`` keeps of its runs beside the exports: the marker of the last run that ended well
(:class:`RunEnd`, which ``ELTExecutionDelay`` is computed from) and, per month, the manifest that was
loaded last (:class:`LoadedManifest`, which tells a repeated manifest event from a changed manifest).

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
from dpc_elt.core.params import validate_yyyymm

log = logging.getLogger(__name__)

RUN_MARKER_NAME = "_ops/dpc_elt_last_run.json"
LOADED_MANIFESTS_DIR = "_ops/dpc_elt_loaded_manifests"
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


def _replace(fs: Any, path: str, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON: a reader sees the old object or the new one, never half of one."""
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    partial = f"{path}.partial"
    with fs.open(partial, "w") as handle:
        json.dump(data, handle)
    fs.mv(partial, path)


def write_run_end(fs: Any, path: str, end: RunEnd) -> RunEnd:
    """Replace the marker."""
    _replace(fs, path, end.to_dict())
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


# ------------------------------------------------------------------------- the manifest loaded last


@dataclass(frozen=True)
class LoadedManifest:
    """The delivery manifest a run loaded a month from, recorded when that run ended well
    (``notify_success``) and forgotten when a later run starts to replace the month (``copy_raw``): a
    record exists only while the warehouse holds exactly that manifest's month."""

    yyyymm: str
    manifest_sha256: str
    dag_id: str
    run_id: str
    loaded_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "loaded_at": self.loaded_at.astimezone(UTC).isoformat(timespec="seconds")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadedManifest:
        loaded_at = datetime.fromisoformat(data["loaded_at"])
        if loaded_at.tzinfo is None:
            raise ValueError("loaded_at has no time zone")
        sha = str(data["manifest_sha256"])
        if len(sha) != 64:
            raise ValueError("manifest_sha256 is not a SHA-256")
        return cls(str(data["yyyymm"]), sha, str(data["dag_id"]), str(data["run_id"]), loaded_at)


def loaded_manifest_uri(cfg: settings.Settings, yyyymm: str) -> str:
    """``<processed_root>/_ops/dpc_elt_loaded_manifests/yyyymm=<YYYYMM>.json``, beside the run marker."""
    validate_yyyymm(yyyymm)
    return f"{cfg.processed_root.rstrip('/')}/{LOADED_MANIFESTS_DIR}/yyyymm={yyyymm}.json"


def write_loaded_manifest(fs: Any, path: str, record: LoadedManifest) -> LoadedManifest:
    _replace(fs, path, record.to_dict())
    log.info("recorded %s as loaded from the manifest with sha256 %s", record.yyyymm, record.manifest_sha256)
    return record


def read_loaded_manifest(fs: Any, path: str) -> LoadedManifest | None:
    """The month's record, or None (never loaded, being replaced, or unreadable: then the month is
    loaded again, which is always safe)."""
    fs.invalidate_cache(path)  # another process (an earlier task) wrote or removed it
    try:
        with fs.open(path, "r") as handle:
            return LoadedManifest.from_dict(json.load(handle))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as error:
        log.warning("loaded-manifest record %s is unreadable (%s): treating it as missing", path, type(error).__name__)
        return None


def forget_loaded_manifest(fs: Any, path: str) -> None:
    """The month is about to change: until a run ends well again, no manifest counts as loaded."""
    fs.invalidate_cache(path)
    if fs.exists(path):
        fs.rm(path)
        log.info("forgot the loaded-manifest record %s: the month is being replaced", path)
