"""A fresh data directory per end-to-end test (the metadata DB is tests/conftest.py's ``airflow_db``)."""

from __future__ import annotations

import pytest

from tests.cleanup import close_dbt_duckdb


@pytest.fixture
def month_env(tmp_path, monkeypatch, airflow_db):
    """A fresh data directory (raw, warehouse, processed, outbox) for one test."""
    from dpc_elt.core.settings import get_settings
    from dpc_elt.orchestration.cosmos_config import _configs

    monkeypatch.setenv("DPC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    _configs.cache_clear()
    yield get_settings()
    close_dbt_duckdb()
    get_settings.cache_clear()
    _configs.cache_clear()
