"""Wait for a month's ``_manifest.json`` without holding a worker slot, and what a wait that ran out means.

The embedded default keeps raw files in a local folder or any fsspec URI, which neither FileSensor
(local only) nor S3KeySensor (S3 only) covers: :class:`ManifestSensor` looks once inline and then
defers to :class:`ObjectExistsTrigger`, which polls in the triggerer. The production backend uses the
amazon provider's S3KeySensor and the same :func:`wait_ran_out`: a scheduled run whose manifest never
came ends *skipped* (the hospital has not delivered yet, a good end for ``ELTExecutionDelay``); a manual
run fails, naming the missing file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSkipException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from dpc_elt.core import run_marker, settings
from dpc_elt.core.errors import ManifestError
from dpc_elt.core.manifest import MANIFEST_NAME, month_uri
from dpc_elt.core.params import month_of_context


def _url_fs(uri: str) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(uri)


def _exists(uri: str) -> bool:
    fs, path = _url_fs(uri)
    return fs.isfile(path)


def manifest_uri(raw_root: str, context: Any) -> str:
    """``<raw_root>/yyyymm=<the run's month>/_manifest.json``."""
    return f"{month_uri(raw_root, month_of_context(context))}/{MANIFEST_NAME}"


def wait_ran_out(context: Any, uri: str, marker_fs: tuple[Any, str] | None = None) -> None:
    """The manifest did not come within ``manifest_wait_minutes``: skip a scheduled run (and record it
    as a good end), fail any other run with ``ManifestError``. ``marker_fs`` is the filesystem and path
    of the run marker (default: through fsspec)."""
    where = "/".join(uri.rsplit("/", 2)[-2:])
    if context["dag_run"].run_type == "scheduled":
        cfg = settings.get_settings()
        fs, path = marker_fs or _url_fs(run_marker.run_marker_uri(cfg))
        ti = context["ti"]
        run_marker.write_run_end(fs, path, run_marker.RunEnd(ti.dag_id, ti.run_id, "not_delivered", datetime.now(UTC)))
        raise AirflowSkipException(f"{where}: not delivered yet; the next daily run waits again")
    raise ManifestError(where, "manifest missing")


class ObjectExistsTrigger(BaseTrigger):
    """Fires ``found`` once ``uri`` is a file, or ``timeout`` after ``timeout_seconds``."""

    def __init__(self, uri: str, poke_seconds: float, timeout_seconds: float) -> None:
        super().__init__()
        self.uri = uri
        self.poke_seconds = poke_seconds
        self.timeout_seconds = timeout_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"uri": self.uri, "poke_seconds": self.poke_seconds, "timeout_seconds": self.timeout_seconds},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            if await asyncio.to_thread(_exists, self.uri):
                yield TriggerEvent({"status": "found", "uri": self.uri})
                return
            if time.monotonic() >= deadline:
                yield TriggerEvent({"status": "timeout", "uri": self.uri})
                return
            await asyncio.sleep(self.poke_seconds)


class ManifestSensor(BaseSensorOperator):
    """Wait for ``<raw_root>/yyyymm=<YYYYMM>/_manifest.json`` of the run's month (deferrable)."""

    ui_color = "#e8f4fa"

    def __init__(self, *, raw_root: str, poke_seconds: int = 60, **kwargs) -> None:
        super().__init__(poke_interval=poke_seconds, **kwargs)
        self.raw_root = raw_root
        self.poke_seconds = poke_seconds

    def poke(self, context) -> bool:
        return _exists(manifest_uri(self.raw_root, context))

    def execute(self, context) -> None:
        uri = manifest_uri(self.raw_root, context)
        if _exists(uri):
            return
        wait = timedelta(minutes=int(context["params"]["manifest_wait_minutes"]))
        if wait.total_seconds() == 0:
            wait_ran_out(context, uri)
        self.defer(
            trigger=ObjectExistsTrigger(uri, self.poke_seconds, wait.total_seconds()),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event: dict[str, Any]) -> None:
        if event.get("status") != "found":
            wait_ran_out(context, event.get("uri", ""))
