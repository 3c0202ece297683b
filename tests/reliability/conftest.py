"""Fixtures of the reliability suite: a fresh data dir per test, dbt in-process (the metadata DB is
tests/conftest.py's ``airflow_db``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def month_env(tmp_path, monkeypatch, airflow_db):
    from dpc_elt.core.settings import get_settings
    from dpc_elt.orchestration.cosmos_config import _configs

    monkeypatch.setenv("DPC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    _configs.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
    _configs.cache_clear()


@pytest.fixture(scope="session")
def dbt(tmp_path_factory):
    """dbt in-process with the project parsed once for the whole session."""
    from tests.reliability.support import Dbt

    return Dbt(tmp_path_factory.mktemp("dbt"))


@pytest.fixture(scope="session")
def loaded_base(tmp_path_factory, dbt):
    """A warehouse with the scenario's two months run through every step (read-only: use ``loaded``)."""
    from tests.reliability import support

    cfg = support.cfg_under(tmp_path_factory.mktemp("base"))
    support.write_scenario(cfg.raw_root)
    for yyyymm in support.SCENARIO_MONTHS:
        support.pipeline_month(cfg, dbt, yyyymm)
    with support.connect(cfg) as con:
        con.execute("checkpoint")
    return cfg


def copy_of(cfg, dest: Path):
    """A private copy of a warehouse with its raw files and exports; returns its settings."""
    import shutil

    from tests.reliability import support

    shutil.copytree(Path(cfg.raw_root).parent, dest, ignore=shutil.ignore_patterns("work"))
    return support.cfg_under(dest)


@pytest.fixture
def loaded(loaded_base, tmp_path):
    """A private copy of ``loaded_base`` (raw files, warehouse, exports) for one test."""
    return copy_of(loaded_base, tmp_path / "copy")
