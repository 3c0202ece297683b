"""Test-wide environment: a throwaway AIRFLOW_HOME and data directory, set before Airflow loads.

Connections and Variables would come from ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` here; the
embedded default needs none. The dbt manifest that the DAG renders from is built once if missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="dpc-elt-tests-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_SESSION_DIR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
        "DPC_DATA_DIR": str(_SESSION_DIR / "data"),
        "DPC_MANIFEST_POKE_SECONDS": "1",
    }
)
# The fault drill's cluster policy (dpc_elt.dev.faults), as scripts/airflow_init.sh installs it for
# local homes; Airflow imports it when it loads, so it is in place before any test imports Airflow.
(_SESSION_DIR / "airflow" / "config").mkdir(parents=True)
shutil.copy(REPO / "plugins" / "dpc_elt" / "dev" / "airflow_local_settings.py", _SESSION_DIR / "airflow" / "config")
for name in ("DPC_RAW_ROOT", "DPC_PROCESSED_ROOT", "DPC_DUCKDB_PATH", "DPC_OUTBOX_PATH", "DPC_SLACK_CONN_ID"):
    os.environ.pop(name, None)


def _dpc_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name.startswith("DPC_")}


_SESSION_DPC_ENVIRONMENT = _dpc_environment()

if not (REPO / "include" / "dbt" / "target" / "manifest.json").exists():
    subprocess.run([str(REPO / "scripts" / "dbt_manifest.sh")], check=True)


def _restore_dpc_environment(before: dict[str, str]) -> None:
    for name in [name for name in os.environ if name.startswith("DPC_") and name not in before]:
        del os.environ[name]
    os.environ.update(before)
    from dpc_elt.core.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture(autouse=True, scope="module")
def _session_dpc_environment_after_each_module():
    """Every module ends with the session's DPC_* environment again: a module- or session-scoped
    fixture runs before the first test's snapshot below, so what its dag.test left in os.environ (an
    earlier module's warehouse) would otherwise outlive the module."""
    yield
    _restore_dpc_environment(_SESSION_DPC_ENVIRONMENT)


@pytest.fixture(autouse=True)
def _isolated_dpc_environment():
    """Give every test the DPC_* environment it started with. Cosmos' in-process dbt runner exports
    the operator's env (DPC_DUCKDB_PATH) into os.environ; in Airflow each task is its own process,
    in a test session it would point later tests at an earlier test's warehouse."""
    before = _dpc_environment()
    yield
    _restore_dpc_environment(before)


@pytest.fixture(scope="session")
def airflow_db():
    """The metadata DB (SQLite, migrated once) and the warehouse pool, for dag.test() runs."""
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    subprocess.run([str(REPO / "scripts" / "airflow_init.sh")], check=True, env=env)


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    from tests.cleanup import close_dbt_duckdb

    close_dbt_duckdb()
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the process right after pytest is done. DuckDB's nanobind bindings print "leaked
    instances" noise at interpreter teardown after in-process dbt and Airflow runs; it would follow
    (and bury) pytest's summary line. Everything is flushed and the exit status is kept."""
    if _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
