"""Run dpc_elt in this process and recover a failed run the way a user does it in the UI.

``run_month`` is ``dag.test()`` for one month (like ``dpc_elt.run_local.run_month``, but the DAG
is parsed once per set of settings: its paths are read when the DAG file is parsed).
``clear_and_resume`` is the UI's "Clear" with *downstream* on the failed tasks of a run, followed by
the scheduling loop of ``dag.test()`` for that same run (``dag.test()`` itself always starts a new
run, so it cannot resume one).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

DAG_ID = "dpc_elt"
RESUME_TIMEOUT_SECONDS = 900
# The runbook clears these ASL states whole (validate_manifest: "clear the group"; build_stage: its
# rollback emptied the month for every stage model); any other failed task is cleared alone.
_STATES_CLEARED_WHOLE = ("validate_manifest", "build_stage")


def dag() -> Any:
    """The DAG as parsed with the current settings (paths are read when the DAG file is parsed)."""
    from dpc_elt.core.settings import get_settings

    return _parse(get_settings())


@cache
def _parse(_settings: Any) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=None)
    assert not bag.import_errors, bag.import_errors
    return bag.dags[DAG_ID]


_last_logical_date: list[datetime] = []


def _fresh_logical_date() -> datetime:
    """A logical date never used before in this process (dag.test replaces a run of the same date)."""
    now = datetime.now(UTC).replace(microsecond=0)
    if _last_logical_date and now <= _last_logical_date[-1]:
        now = _last_logical_date[-1] + timedelta(seconds=1)
    _last_logical_date.append(now)
    return now


def run_month(yyyymm: str) -> Any:
    """One new run of dpc_elt for ``yyyymm`` (dag.test); returns the finished DagRun."""
    return dag().test(logical_date=_fresh_logical_date(), run_conf={"yyyymm": yyyymm})


def states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def run_state(dag_run: Any) -> str:
    return str(getattr(dag_run.state, "value", dag_run.state))


def failed_tasks(dag_run: Any) -> list[str]:
    return sorted(task_id for task_id, state in states(dag_run).items() if state == "failed")


def to_clear_for(task_ids: Iterable[str]) -> set[str]:
    """What the runbook says to clear for these failed tasks: the task (its whole ASL state when the
    state is a task group), and — with the UI's default "downstream" — everything after it."""
    chosen: set[str] = set()
    for task_id in task_ids:
        state = task_id.split(".", 1)[0]
        if state in _STATES_CLEARED_WHOLE:
            chosen |= {t for t in dag().task_dict if t.split(".", 1)[0] == state}
        else:
            chosen.add(task_id)
    return chosen


def clear_and_resume(dag_run: Any, task_ids: Iterable[str]) -> Any:
    """Clear ``task_ids`` and their downstream tasks in ``dag_run`` (as the UI does), then run the
    cleared tasks to the end with dag.test()'s loop. Returns the DagRun, reloaded."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.taskinstance import clear_task_instances, find_relevant_relatives
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    finished = {
        TaskInstanceState.SUCCESS,
        TaskInstanceState.FAILED,
        TaskInstanceState.SKIPPED,
        TaskInstanceState.UPSTREAM_FAILED,
        TaskInstanceState.REMOVED,
    }
    real_dag = dag()
    session = settings.Session()
    try:
        scheduler_dag = SerializedDagModel.get_dag(DAG_ID, session=session)
        ids = set(task_ids)
        ids |= {
            t
            for t in find_relevant_relatives(
                ids, (), direction="downstream", dag=scheduler_dag, run_id=dag_run.run_id, session=session
            )
            if isinstance(t, str)
        }
        tis = scheduler_dag.clear(dry_run=True, task_ids=sorted(ids), run_id=dag_run.run_id, session=session)
        clear_task_instances(list(tis), session, DagRunState.QUEUED)
        session.commit()

        dr = session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == dag_run.run_id))
        dr.dag = scheduler_dag
        dr.state = DagRunState.RUNNING
        session.commit()
        # The scheduling loop of DAG.test() (airflow.sdk.definitions.dag), for an existing run.
        deadline = time.monotonic() + RESUME_TIMEOUT_SECONDS
        while dr.state == DagRunState.RUNNING:
            assert time.monotonic() < deadline, f"run {dag_run.run_id} did not finish after the clear"
            session.expire_all()
            schedulable, _ = dr.update_state(session=session)
            for ti in schedulable:
                if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                    ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            all_tis = set(dr.get_task_instances(session=session))
            scheduled = {ti for ti in all_tis if ti.state == TaskInstanceState.SCHEDULED}
            if not scheduled and {ti for ti in all_tis if ti.state not in finished}:
                time.sleep(0.2)
            for ti in scheduled:
                # dag.test() logs and goes on; the task's state says what happened
                with contextlib.suppress(Exception):
                    _run_task(ti=ti, task=real_dag.task_dict[ti.task_id], run_triggerer=True)
    finally:
        session.close()
    return _reload(dag_run.run_id)


def _reload(run_id: str) -> Any:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dr = session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id))
        session.expunge(dr)
    return dr
