"""One operator for every step whose work the backend does: it asks the configured backend, and when
the backend submitted the work instead of finishing it (``Pending``: a Redshift Data API batch) the
task defers on the backend's trigger — no worker slot is held while the warehouse works — and finishes
when the trigger fires. On the embedded backend every step finishes in place.

Each step also says what it read and wrote (:meth:`BackendStepOperator.lineage`), which the OpenLineage
provider reports in the task's COMPLETE event (``get_openlineage_facets_on_complete``)."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import BaseOperator

from dpc_elt.backends import get_backend
from dpc_elt.backends.base import Backend, Pending
from dpc_elt.core.lineage import StepLineage

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

    def lineage(self, context: Any, backend: Backend, result: Any) -> StepLineage:
        """What the finished step read and wrote (names only); none by default."""
        return StepLineage()

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
        result = self.finish(context, outcome)
        # Named here, while the task's context can still read XComs; the OpenLineage listener asks for
        # it after the task succeeded, from outside the task's own execution (a few names: cheap).
        self.step_lineage = self.lineage(context, get_backend(), result)
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The step's inputs and outputs for OpenLineage (only called when the provider is enabled)."""
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset

        found = getattr(self, "step_lineage", None) or StepLineage()
        return OperatorLineage(
            inputs=[Dataset(namespace=namespace, name=name) for namespace, name in found.inputs],
            outputs=[Dataset(namespace=namespace, name=name) for namespace, name in found.outputs],
        )
