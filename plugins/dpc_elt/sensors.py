"""Wait for a month's ``_manifest.json`` under any fsspec root, without holding a worker slot.

The embedded default keeps raw files in a local folder or any fsspec URI, which neither FileSensor
(local only) nor S3KeySensor (S3 only) covers; this sensor polls once inline and then defers to a
trigger that polls in the triggerer. A scheduled run whose manifest never came ends *skipped* (the
hospital has not delivered yet); a manual run fails, naming the missing file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSkipException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from dpc_elt.errors import ManifestError


def _exists(uri: str) -> bool:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    return fs.isfile(path)


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

    def _uri(self, context) -> str:
        from dpc_elt.manifest import MANIFEST_NAME, month_uri
        from dpc_elt.params import month_of_context

        return f"{month_uri(self.raw_root, month_of_context(context))}/{MANIFEST_NAME}"

    def poke(self, context) -> bool:
        return _exists(self._uri(context))

    def execute(self, context) -> None:
        uri = self._uri(context)
        if _exists(uri):
            return
        wait = timedelta(minutes=int(context["params"]["manifest_wait_minutes"]))
        if wait.total_seconds() == 0:
            self._timed_out(context, uri)
        self.defer(
            trigger=ObjectExistsTrigger(uri, self.poke_seconds, wait.total_seconds()),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event: dict[str, Any]) -> None:
        if event.get("status") != "found":
            self._timed_out(context, event.get("uri", ""))

    @staticmethod
    def _timed_out(context, uri: str) -> None:
        name = uri.rsplit("/", 2)[-2:]
        where = "/".join(name)
        if context["dag_run"].run_type == "scheduled":
            from dpc_elt import operations

            operations.record_run_end(context, "not_delivered")  # a good end for ELTExecutionDelay
            raise AirflowSkipException(f"{where}: not delivered yet; the next daily run waits again")
        raise ManifestError(where, "manifest missing")
