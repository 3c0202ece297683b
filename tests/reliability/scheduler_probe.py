"""Ask Airflow's scheduler what it does with two queued runs of dpc_elt for the same month.

Run in its own process with a fresh AIRFLOW_HOME (test_concurrency.py does that): the scheduler's
decision depends on every DagRun in the metadata DB, so it must not share one with other tests.
Prints one JSON line: the run states after each scheduling pass.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

DAG_ID = "dpc_elt"
RUN_PREFIX = "manual__overlap_"


def _states(session) -> dict[str, str]:
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    rows = session.execute(select(DagRun.run_id, DagRun.state).where(DagRun.dag_id == DAG_ID)).all()
    return {run_id: str(getattr(state, "value", state)) for run_id, state in sorted(rows)}


def main() -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.db import initdb
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    initdb()
    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    bag = DagBag(dag_folder=None)
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)

    with create_session() as session:
        session.get(DagModel, DAG_ID).is_paused = False
        dag = SerializedDagModel.get_dag(DAG_ID, session=session)
        # Both runs are due already: the scheduler only looks at runs whose run_after has passed.
        first = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
        for n in range(2):
            when = first + timedelta(minutes=n)
            dag.create_dagrun(
                run_id=f"{RUN_PREFIX}{n}",
                logical_date=when,
                data_interval=(when, when),
                run_after=when,
                conf={"yyyymm": "202504"},
                run_type=DagRunType.MANUAL,
                state=DagRunState.QUEUED,
                triggered_by=DagRunTriggeredByType.TEST,
                session=session,
            )

    runner = SchedulerJobRunner(job=Job())
    passes = []
    with create_session() as session:
        runner._start_queued_dagruns(session)
    with create_session() as session:
        passes.append(_states(session))
    # A second pass while the first run is still running changes nothing.
    with create_session() as session:
        runner._start_queued_dagruns(session)
    with create_session() as session:
        passes.append(_states(session))
        # The running one finishes; the next pass starts the other.
        for run in session.query(DagRun).filter(DagRun.dag_id == DAG_ID, DagRun.state == DagRunState.RUNNING):
            run.set_state(DagRunState.SUCCESS)
    with create_session() as session:
        runner._start_queued_dagruns(session)
    with create_session() as session:
        passes.append(_states(session))
    print(json.dumps(passes))


if __name__ == "__main__":
    main()
