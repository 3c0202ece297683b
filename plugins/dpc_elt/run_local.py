"""Run ``dpc_elt`` for one month in this process (``dag.test``) and say what it produced.

Used by ``make run-month`` / ``make demo`` / ``make backfill`` on the embedded default:
``python -m dpc_elt.run_local --yyyymm 202504``. Exit status 0 only for a successful run.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime


def run_month(yyyymm: str, dag_folder: str | None = None):
    """Parse the DAG folder, run the DAG for ``yyyymm``, return the finished DagRun."""
    from airflow.dag_processing.dagbag import DagBag

    from dpc_elt.params import validate_yyyymm

    validate_yyyymm(yyyymm)
    bag = DagBag(dag_folder=dag_folder)
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {sorted(bag.import_errors)}")
    dag = bag.dags["dpc_elt"]
    return dag.test(logical_date=datetime.now(UTC), run_conf={"yyyymm": yyyymm})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yyyymm", required=True, help="month to load, e.g. 202504")
    args = parser.parse_args(argv)

    from dpc_elt.settings import get_settings

    dag_run = run_month(args.yyyymm)
    cfg = get_settings()
    state = str(getattr(dag_run.state, "value", dag_run.state))
    print(f"dpc_elt {args.yyyymm}: run {dag_run.run_id} ended {state}")
    for ti in sorted(dag_run.get_task_instances(), key=lambda t: t.start_date or datetime.max.replace(tzinfo=UTC)):
        print(f"  {ti.task_id:<55} {ti.state}")
    print(f"Parquet:      {cfg.processed_root}/yyyymm={args.yyyymm}/")
    where = f"Slack connection {cfg.slack_conn_id}" if cfg.slack_conn_id else cfg.outbox_path
    print(f"Notification: {where}")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
