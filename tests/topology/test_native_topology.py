"""docker-compose.yaml's topology, natively: PostgreSQL, an S3 server (moto) and Airflow's api-server,
scheduler, dag-processor and triggerer as separate processes (LocalExecutor), the DAG reading
``s3://dpc-elt/raw`` and exporting to ``s3://dpc-elt/processed`` through the embedded backend's S3 path.

A month is triggered through the REST API as a user does it from the trigger form (``conf`` yyyymm),
then three months are backfilled (one single-run backfill per month: the run whose logical date is
the 1st of the next month at 03:00 JST loads that month). Process logs: ``test-artifacts/topology/``.
Needs Debian's PostgreSQL server (``scripts/install_services.sh``, run by ``make test``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.topology.services import REPO, ApiClient, Topology, logical_date_for_month

pytestmark = pytest.mark.slow

ARTIFACTS = REPO / "test-artifacts" / "topology"
TRIGGERED_MONTH = "202401"
BACKFILL_MONTHS = ("202402", "202403", "202404")
RUN_TIMEOUT = 1800  # seconds per month: ~1-2 min on an idle 2-core machine, much more under load
EXPECTED_SKIPPED = {"rollback_stage", "notify_failure"}  # the Catch branches of a clean run


@pytest.fixture(scope="module")
def topology(tmp_path_factory, request):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    topo = Topology(tmp_path_factory.mktemp("topology"), ARTIFACTS)
    request.addfinalizer(topo.stop)  # also after a partial start
    started = time.monotonic()
    with logs_on_failure(topo):
        client = topo.start()
        uploaded = topo.seed(f"{TRIGGERED_MONTH}-{BACKFILL_MONTHS[-1]}", facilities=1)
    print(f"topology up and seeded in {time.monotonic() - started:.0f}s ({len(uploaded)} raw files)")
    return topo, client


@contextmanager
def logs_on_failure(topo: Topology):
    try:
        yield
    except BaseException:
        print(topo.log_tails(), file=sys.stderr)
        raise


def check_month_exported(topo: Topology, yyyymm: str) -> None:
    """The month's Parquet and output manifest are in the bucket and agree with each other."""
    import duckdb

    prefix = f"processed/yyyymm={yyyymm}/"
    keys = topo.s3.keys(prefix)
    assert f"{prefix}fact_case_summary.parquet" in keys, keys
    manifest = json.loads(topo.s3.get(f"{prefix}_manifest.json"))
    assert manifest["yyyymm"] == yyyymm
    (listed,) = manifest["files"]
    parquet = topo.s3.get(prefix + listed["path"])
    assert hashlib.sha256(parquet).hexdigest() == listed["sha256"]
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / listed["path"]
        local.write_bytes(parquet)
        relation = duckdb.read_parquet(str(local))
        assert relation.count("*").fetchall()[0][0] == listed["rows"] > 0
        assert "is_readmission_30d" in relation.columns
    # The S3 path ran: nothing was exported to the local default.
    assert not (topo.data_dir / "processed").exists()


def test_month_triggered_through_the_rest_api(topology):
    topo, client = topology
    with logs_on_failure(topo):
        assert client.request("GET", "/pools/dpc_warehouse")["slots"] == 1
        started = time.monotonic()
        run_id = client.trigger(TRIGGERED_MONTH)
        run = client.wait_run(run_id, timeout=RUN_TIMEOUT, alive=topo.alive)
        states = client.task_states(run_id)
        print(f"{TRIGGERED_MONTH}: {run['state']} in {time.monotonic() - started:.0f}s")
        assert run["state"] == "success", states
        assert run["conf"] == {"yyyymm": TRIGGERED_MONTH}
        assert run["note"] == f"month {TRIGGERED_MONTH}"  # where a person looks for the run's month
        assert {task for task, state in states.items() if state != "success"} == EXPECTED_SKIPPED, states
        check_month_exported(topo, TRIGGERED_MONTH)


def test_three_months_backfilled(topology):
    from dpc_elt.core.params import previous_month

    topo, client = topology
    with logs_on_failure(topo):
        started = time.monotonic()
        lines: list[str] = []
        results = client.backfill_months(
            BACKFILL_MONTHS, timeout_per_month=RUN_TIMEOUT, echo=lines.append, alive=topo.alive
        )
        print("\n".join(lines), f"\nbackfill of {len(BACKFILL_MONTHS)} months: {time.monotonic() - started:.0f}s")
        assert results == dict.fromkeys(BACKFILL_MONTHS, "success")
        runs = client.request("GET", "/dags/dpc_elt/dagRuns", params={"run_type": "backfill", "limit": 100})
        loaded = sorted(previous_month(_parse(run["logical_date"])) for run in runs["dag_runs"])
        assert loaded == list(BACKFILL_MONTHS)  # one run per month, each loading the month before its date
        notes = {run["note"] for run in runs["dag_runs"]}
        assert notes == {f"month {yyyymm}" for yyyymm in BACKFILL_MONTHS}  # the month, not the UTC date
        for yyyymm in BACKFILL_MONTHS:
            check_month_exported(topo, yyyymm)
        check_month_exported(topo, TRIGGERED_MONTH)  # still there: months are replaced one at a time


def test_month_maps_to_the_run_that_loads_it():
    from dpc_elt.core.params import previous_month

    for yyyymm in ("202401", "202412", "202503"):
        assert previous_month(logical_date_for_month(yyyymm)) == yyyymm


def test_a_month_without_its_manifest_fails_at_once_naming_the_path(topology):
    topo, client = topology
    with logs_on_failure(topo):
        body = {"logical_date": None, "conf": {"yyyymm": "209912", "manifest_wait_minutes": 0}}
        run_id = client.request("POST", "/dags/dpc_elt/dagRuns", json=body)["dag_run_id"]
        run = client.wait_run(run_id, timeout=300, alive=topo.alive)
        assert run["state"] == "failed"
        assert client.task_states(run_id)["validate_manifest.wait_for_manifest"] == "failed"
        assert not topo.s3.keys("processed/yyyymm=209912/")


def test_naive_dates_are_read_in_tokyo(topology):
    """core.default_timezone = Asia/Tokyo in this topology (and docker-compose.yaml): a CLI date without an
    offset means JST, like the DAG's schedule. The UI shows the browser's zone (docs/local-development.md)."""
    topo, _client = topology
    done = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "airflow"), "config", "get-value", "core", "default_timezone"],
        env=topo.airflow.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "Asia/Tokyo"


def test_client_refuses_a_wrong_password(topology):
    from tests.topology.services import ServiceError

    topo, _client = topology
    with pytest.raises(ServiceError, match="401"):
        ApiClient(topo.airflow.api_url, topo.airflow.username, topo.airflow.password + "-wrong")


def _parse(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))
