"""One operator for every step whose work the backend does: it asks the configured backend, and when
the backend submitted the work instead of finishing it (``Pending``: a Redshift Data API batch) the
task defers on the backend's trigger — no worker slot is held while the warehouse works — and finishes
when the trigger fires. On the embedded backend every step finishes in place."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import BaseOperator

from dpc_elt.backends import get_backend
from dpc_elt.backends.base import Backend, Pending

log = logging.getLogger(__name__)


class BackendStepOperator(BaseOperator):
    """Subclasses say what to ask the backend (:meth:`start`) and what to do with its result
    (:meth:`finish`); deferring and resuming is done here, once."""

    ui_color = "#eef3e2"

    @abstractmethod
    def start(self, context: Any, backend: Backend) -> Any:
        """Ask the backend for the step's work; its result, or ``Pending``."""

    def finish(self, context: Any, result: Any) -> Any:
        return result

    @contextmanager
    def guarded(self) -> Iterator[None]:
        """Around the backend's work, in execute and after a deferral alike."""
        yield

    def execute(self, context: Any) -> Any:
        with self.guarded():
            outcome = self.start(context, get_backend())
        return self._settle(context, outcome)

    def resume_step(self, context: Any, event: dict[str, Any] | None = None, pending: dict[str, Any] | None = None):
        """Called when the trigger of a ``Pending`` fired: the backend finishes (or submits the next part)."""
        with self.guarded():
            outcome = get_backend().resume(pending or {}, event)
        return self._settle(context, outcome)

    def _settle(self, context: Any, outcome: Any) -> Any:
        if isinstance(outcome, Pending):
            log.info("%s: %s submitted; waiting in the triggerer", self.task_id, outcome.step)
            self.defer(trigger=outcome.trigger, method_name="resume_step", kwargs={"pending": outcome.state})
        return self.finish(context, outcome)
