"""Run ``dpc_elt`` for one month in this process (``dag.test``) and say what it produced.

Used by ``make run-month`` / ``make demo`` / ``make backfill`` on the embedded default:
``python -m dpc_elt.dev.run_local --yyyymm 202504``. Exit status 0 only for a successful run.
While the run goes, one line per finished task (state, seconds) is written to ``--progress-fd``
(default 2, stderr; ``scripts/run_month.sh`` passes a descriptor that reaches the terminal while the
Airflow log goes to a file); ``--quiet`` writes none.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO


@contextmanager
def task_progress(out: TextIO | None) -> Iterator[None]:
    """While active, ``dag.test`` reports each task as it finishes: ``dag.test`` runs every task through
    the module function ``_run_task`` of ``airflow.sdk.definitions.dag``, which is wrapped here. A private
    function: if an Airflow version lacks it, the run goes on without per-task lines."""
    try:
        from airflow.sdk.definitions import dag as dag_module

        original = dag_module._run_task
    except (ImportError, AttributeError):
        original = None
    if out is None or original is None:
        yield
        return

    def run_task(*, ti: Any, task: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return original(ti=ti, task=task, **kwargs)
        finally:
            state = getattr(ti.state, "value", ti.state)
            print(f"  {ti.task_id:<55} {state!s:<14} {time.monotonic() - started:7.1f} s", file=out, flush=True)

    dag_module._run_task = run_task
    try:
        yield
    finally:
        dag_module._run_task = original


def run_month(yyyymm: str, dag_folder: str | None = None, progress: TextIO | None = None):
    """Parse the DAG folder, run the DAG for ``yyyymm``, return the finished DagRun."""
    from airflow.dag_processing.dagbag import DagBag

    from dpc_elt.core.params import validate_yyyymm

    validate_yyyymm(yyyymm)
    bag = DagBag(dag_folder=dag_folder)
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {sorted(bag.import_errors)}")
    dag = bag.dags["dpc_elt"]
    with task_progress(progress):
        return dag.test(logical_date=datetime.now(UTC), run_conf={"yyyymm": yyyymm})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yyyymm", required=True, help="month to load, e.g. 202504")
    parser.add_argument("--progress-fd", type=int, default=2, help="file descriptor for per-task lines (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no per-task progress lines")
    args = parser.parse_args(argv)

    from dpc_elt.core.settings import get_settings
    from dpc_elt.ops.quality_report import report_uri

    progress = None
    if not args.quiet:
        progress = sys.stderr if args.progress_fd == 2 else os.fdopen(os.dup(args.progress_fd), "w", buffering=1)
    started = time.monotonic()
    try:
        dag_run = run_month(args.yyyymm, progress=progress)
    finally:
        if progress is not None and progress is not sys.stderr:
            progress.close()
    cfg = get_settings()
    state = str(getattr(dag_run.state, "value", dag_run.state))
    print(f"dpc_elt {args.yyyymm}: run {dag_run.run_id} ended {state} in {time.monotonic() - started:,.1f} s")
    # The per-task lines went by already; the summary names only what did not succeed.
    by_state: dict[str, list[str]] = {}
    for ti in sorted(dag_run.get_task_instances(), key=lambda t: t.start_date or datetime.max.replace(tzinfo=UTC)):
        by_state.setdefault(str(getattr(ti.state, "value", ti.state)), []).append(ti.task_id)
    print(f"  {len(by_state.pop('success', []))} tasks succeeded")
    for task_state, task_ids in by_state.items():
        print(f"  {task_state}: {', '.join(task_ids)}")
    print(f"Parquet:        {cfg.processed_root}/yyyymm={args.yyyymm}/")
    if state == "success":
        print(f"Quality report: {report_uri(cfg.processed_root, args.yyyymm)}")
    where = f"Slack connection {cfg.slack_conn_id}" if cfg.slack_conn_id else cfg.outbox_path
    print(f"Notification:   {where}")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
