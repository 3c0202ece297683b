"""Concurrency: one run of dpc_elt at a time, and one writer of the embedded warehouse at a time.

* ``max_active_runs=1``: shown with the scheduler's own decision — two queued runs, one started, the
  other only after the first has ended (scheduler_probe.py, in its own metadata DB).
* the ``dpc_warehouse`` pool (1 slot) on every task that opens DuckDB: checked on the DAG here, and
  by recording every ``duckdb.connect`` during real runs in test_dag_runs.py.
* two processes at once: the second writer gets ``WarehouseBusyError``, which copy_raw's retry policy
  retries, and once the first is gone the retried load succeeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from dpc_elt.backends import embedded
from dpc_elt.core import settings
from dpc_elt.core.errors import WarehouseBusyError
from tests.reliability import airflow_support as af
from tests.reliability import support

REPO = Path(__file__).resolve().parents[2]

# Tasks that never open the warehouse: waiting for and checking files, and the failure notice.
NO_WAREHOUSE = {"validate_manifest.wait_for_manifest", "validate_manifest.check_manifest", "notify_failure"}


@pytest.fixture
def dag(month_env):
    return af.dag()


def test_every_task_that_may_open_duckdb_holds_the_one_slot_pool(dag, airflow_db):
    from airflow.models.pool import Pool

    outside = {
        t.task_id: t.pool for t in dag.tasks if t.task_id not in NO_WAREHOUSE and t.pool != settings.WAREHOUSE_POOL
    }
    assert outside == {}
    cosmos = [t for t in dag.tasks if type(t).__module__.startswith("cosmos.")]
    assert len(cosmos) == 3 and {t.pool for t in cosmos} == {settings.WAREHOUSE_POOL}  # one per dbt state
    assert Pool.get_pool(settings.WAREHOUSE_POOL).slots == 1


def test_no_two_runs_at_once(tmp_path):
    """Two runs queued for the same month: the scheduler starts one, keeps the other queued while the
    first runs, and starts it once the first has ended. Asked of Airflow's own scheduling code in a
    separate process with an empty metadata DB (its decision depends on every run in the DB)."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "DPC_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
    }
    probe = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("scheduler_probe.py"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    passes = json.loads(probe.stdout.strip().splitlines()[-1])
    first, second = "manual__overlap_0", "manual__overlap_1"
    assert passes == [
        {first: "running", second: "queued"},
        {first: "running", second: "queued"},
        {first: "success", second: "running"},
    ]


HOLD = "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('holding', flush=True); time.sleep(60)"


def test_a_second_process_gets_warehouse_busy_and_copy_raw_retries(loaded):
    """Another process holds the warehouse: the load fails with WarehouseBusyError before touching
    anything, copy_raw's policy says retry, and the retry after the holder is gone succeeds."""
    from dpc_elt.orchestration.retry import COPY_RAW_RETRY

    holder = subprocess.Popen([sys.executable, "-c", HOLD, loaded.duckdb_path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(WarehouseBusyError) as info, embedded.connect(loaded):
            pass
        assert str(info.value) == "dpc.duckdb: warehouse is locked by another writer"
        with pytest.raises(WarehouseBusyError) as info:
            support.load_raw(loaded, "202504")
        decision = COPY_RAW_RETRY["retry_policy"].evaluate(info.value, try_number=1, max_tries=5)
        assert decision.action.value == "retry"
        assert COPY_RAW_RETRY["retries"] == 4 and COPY_RAW_RETRY["retry_delay"] == timedelta(seconds=30)
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # the retry
        try:
            counts = support.load_raw(loaded, "202504")
            break
        except WarehouseBusyError:
            assert time.monotonic() < deadline, "the lock outlived its process"
            time.sleep(0.2)
    assert counts["y1"] > 0
    assert not support.duplicates(loaded)
