"""Run ``dpc_elt`` for one or more months in this process (``dag.test``) and say what each produced.

Used by ``make run-month`` / ``make demo`` / ``make backfill`` on the embedded default:
``python -m dpc_elt.dev.run_local --yyyymm 202503 202504``. The months run in order, in one process (the
DAG is parsed once, Airflow's and dbt's start-up are paid once), and the first month that does not
succeed stops the rest. Exit status 0 only if every month succeeded.

Everything meant for a person — a start line per month, where its ``_manifest.json`` is looked for and
for how long, one line per finished task (state, seconds), a line a minute while the manifest is
awaited, the month's summary — goes to ``--progress-fd`` (default 2, stderr; ``scripts/run_month.sh``
passes a descriptor that reaches the terminal while Airflow's own log goes to a file).

Locally a missing manifest is usually a typo in the month or the root, so the wait defaults to 0
minutes: the month fails at once, naming the path (``--manifest-wait-minutes`` / ``make run-month
MANIFEST_WAIT_MINUTES=30`` waits for a delivery; the production schedule keeps its 6-hour wait).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO


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


def _parse_dag(dag_folder: str | None = None) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dag_folder)
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {sorted(bag.import_errors)}")
    return bag.dags["dpc_elt"]


@contextmanager
def loaded_objects_frozen() -> Iterator[None]:
    """While active, what is loaded now (Airflow, the DAG, dbt, objects of earlier months still alive)
    is left out of garbage collection: dag.test runs every task in this process, and Cosmos collects
    after each dbt command, so those passes, and Python's own full ones, walk only what the month's
    tasks make. dbt's runner is imported first, as the first dbt task would. Unfrozen at the end, so
    that the interpreter's exit still finalises everything (DuckDB's bindings report what it does not)."""
    import dbt.cli.main  # noqa: F401  (imported for its cost, paid here once instead of inside a task)

    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def exit_without_teardown(command: Callable[[], int]) -> NoReturn:
    """Run ``command`` as this process's main and exit with its status after Python's own exit steps
    (threads and executors joined, every exit handler run: dbt-duckdb's closes the warehouse, logging's
    flushes) but without the interpreter's teardown, whose last full garbage collection over Airflow's,
    dbt's and the execution API's objects took 2.5 s of a small month. Call it first thing in
    ``__main__``: its handler, registered first, runs last. If ``command`` raises, the exit is Python's."""
    status: list[int] = []

    def end_now() -> None:
        if status:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status[0])

    atexit.register(end_now)
    status.append(command())
    sys.exit(status[0])


def run_month(
    yyyymm: str,
    dag_folder: str | None = None,
    progress: TextIO | None = None,
    *,
    dag: Any = None,
    manifest_wait_minutes: int | None = None,
    facility_cd: str | None = None,
):
    """Run the DAG for ``yyyymm`` (with ``facility_cd``: only that facility's rows of it), parsing the DAG
    folder unless ``dag`` is given; the finished DagRun."""
    from dpc_elt.core.params import validate_facility_cd, validate_yyyymm

    conf: dict[str, Any] = {"yyyymm": validate_yyyymm(yyyymm)}
    if facility_cd:
        conf["facility_cd"] = validate_facility_cd(facility_cd)
    dag = dag if dag is not None else _parse_dag(dag_folder)
    if manifest_wait_minutes is not None:
        conf["manifest_wait_minutes"] = manifest_wait_minutes
    with loaded_objects_frozen(), task_progress(progress):
        return dag.test(logical_date=datetime.now(UTC), run_conf=conf)


def manifest_uri(yyyymm: str) -> str:
    from dpc_elt.core.manifest import MANIFEST_NAME, month_uri
    from dpc_elt.core.settings import get_settings

    return f"{month_uri(get_settings().raw_root, yyyymm)}/{MANIFEST_NAME}"


def _manifest_exists(uri: str) -> bool:
    from dpc_elt.backends import get_backend

    fs, path = get_backend().filesystem(uri)
    return fs.isfile(path)


@contextmanager
def waiting_lines(uri: str, minutes: int, out: TextIO | None, every_seconds: float = 60.0) -> Iterator[None]:
    """While the block runs, a line every minute for as long as ``uri`` does not exist."""
    done = threading.Event()

    def report() -> None:
        started = time.monotonic()
        while not done.wait(every_seconds):
            if _manifest_exists(uri):
                return
            waited = (time.monotonic() - started) / 60
            print(f"  still waiting for {uri}: {waited:.0f} of {minutes} min", file=out, flush=True)

    watcher = threading.Thread(target=report, name="manifest_wait_lines", daemon=True)
    if out is not None and minutes > 0:
        watcher.start()
    try:
        yield
    finally:
        done.set()


def summary(yyyymm: str, dag_run: Any, seconds: float) -> tuple[bool, list[str]]:
    """Whether the month succeeded, and the lines that say so: the per-task lines went by already, the
    summary names only what did not succeed, then where the outputs went."""
    from dpc_elt.core.settings import get_settings
    from dpc_elt.ops.quality_report import report_uri

    cfg = get_settings()
    state = str(getattr(dag_run.state, "value", dag_run.state))
    lines = [f"dpc_elt {yyyymm}: run {dag_run.run_id} ended {state} in {seconds:,.1f} s"]
    by_state: dict[str, list[str]] = {}
    for ti in sorted(dag_run.get_task_instances(), key=lambda t: t.start_date or datetime.max.replace(tzinfo=UTC)):
        by_state.setdefault(str(getattr(ti.state, "value", ti.state)), []).append(ti.task_id)
    lines.append(f"  {len(by_state.pop('success', []))} tasks succeeded")
    lines += [f"  {task_state}: {', '.join(task_ids)}" for task_state, task_ids in by_state.items()]
    lines.append(f"Parquet:        {cfg.processed_root}/yyyymm={yyyymm}/")
    if state == "success":
        lines.append(f"Quality report: {report_uri(cfg.processed_root, yyyymm)}")
    where = f"Slack connection {cfg.slack_conn_id}" if cfg.slack_conn_id else cfg.outbox_path
    lines.append(f"Notification:   {where}")
    return state == "success", lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yyyymm", required=True, nargs="+", help="months to load in order, e.g. 202503 202504")
    parser.add_argument("--progress-fd", type=int, default=2, help="file descriptor for the lines (default 2)")
    parser.add_argument(
        "--manifest-wait-minutes",
        type=int,
        default=int(os.environ.get("MANIFEST_WAIT_MINUTES") or 0),
        help="how long each month waits for its _manifest.json (default $MANIFEST_WAIT_MINUTES or 0)",
    )
    parser.add_argument(
        "--facility-cd",
        default=os.environ.get("FACILITY_CD") or None,
        help="reload only this facility's rows of each month, e.g. 131000123 (default $FACILITY_CD: the whole month)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-task lines")
    args = parser.parse_args(argv)

    from dpc_elt.core.params import validate_facility_cd, validate_yyyymm

    for yyyymm in args.yyyymm:
        validate_yyyymm(yyyymm)
    if args.facility_cd:
        validate_facility_cd(args.facility_cd)
    out = sys.stderr if args.progress_fd == 2 else os.fdopen(os.dup(args.progress_fd), "w", buffering=1)
    progress = None if args.quiet else out
    dag = None
    started_all = time.monotonic()
    try:
        for number, yyyymm in enumerate(args.yyyymm, 1):
            only = f", facility {args.facility_cd} only" if args.facility_cd else ""
            print(f"==> month {number}/{len(args.yyyymm)}: dpc_elt for {yyyymm}{only}", file=out, flush=True)
            uri = manifest_uri(yyyymm)
            wait = args.manifest_wait_minutes
            if not _manifest_exists(uri):
                if wait == 0:
                    print(
                        f"<== {yyyymm}: no manifest at {uri}. Check the month and DPC_RAW_ROOT; to wait for a "
                        f"delivery: make run-month YYYYMM={yyyymm} MANIFEST_WAIT_MINUTES=30",
                        file=out,
                        flush=True,
                    )
                    return 1
                print(f"  waiting up to {wait} min for {uri}", file=out, flush=True)
            dag = dag if dag is not None else _parse_dag()
            started = time.monotonic()
            with waiting_lines(uri, wait, progress):
                dag_run = run_month(
                    yyyymm, progress=progress, dag=dag, manifest_wait_minutes=wait, facility_cd=args.facility_cd
                )
            ok, lines = summary(yyyymm, dag_run, time.monotonic() - started)
            print("\n".join(lines), file=out, flush=True)
            so_far = time.monotonic() - started_all
            outcome = "done" if ok else "FAILED"
            print(f"<== month {number}/{len(args.yyyymm)}: {yyyymm} {outcome} ({so_far:,.0f} s so far)", file=out)
            if not ok:
                return 1
    finally:
        if out is not sys.stderr:
            out.close()
    return 0


if __name__ == "__main__":
    exit_without_teardown(main)
