"""An Airflow metadata database (SQLite, migrated once) and the warehouse pool, for dag.test() runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cleanup import close_dbt_duckdb

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def airflow_db():
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}
    subprocess.run([str(REPO / "scripts" / "airflow_init.sh")], check=True, env=env)


@pytest.fixture
def month_env(tmp_path, monkeypatch, airflow_db):
    """A fresh data directory (raw, warehouse, processed, outbox) for one test."""
    from dpc_elt.cosmos_config import _configs
    from dpc_elt.settings import get_settings

    monkeypatch.setenv("DPC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    _configs.cache_clear()
    yield get_settings()
    close_dbt_duckdb()
    get_settings.cache_clear()
    _configs.cache_clear()
