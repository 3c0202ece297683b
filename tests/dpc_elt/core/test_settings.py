"""Settings work with zero environment variables and refuse a backend that is not there."""

from __future__ import annotations

import pytest

from dpc_elt.core import settings


@pytest.fixture(autouse=True)
def fresh_settings():
    settings.get_settings.cache_clear()
    yield
    settings.get_settings.cache_clear()


def test_embedded_default_needs_no_environment(monkeypatch):
    for name in ("DPC_DATA_DIR", "DPC_BACKEND", "DPC_RAW_ROOT", "DPC_DUCKDB_PATH", "DPC_SLACK_CONN_ID"):
        monkeypatch.delenv(name, raising=False)
    cfg = settings.get_settings()
    data = settings.REPO_ROOT / "data"
    assert cfg.backend == "embedded"
    assert (cfg.raw_root, cfg.processed_root) == (str(data / "raw"), str(data / "processed"))
    assert cfg.duckdb_path == str(data / "warehouse" / "dpc.duckdb")
    assert cfg.slack_conn_id == ""


def test_roots_may_be_any_fsspec_uri(monkeypatch):
    monkeypatch.setenv("DPC_RAW_ROOT", "memory://landing/raw")
    assert settings.get_settings().raw_root == "memory://landing/raw"


@pytest.mark.parametrize("backend", ["redshift", "duckdb", ""])
def test_unknown_or_unavailable_backend_is_refused(monkeypatch, backend):
    monkeypatch.setenv("DPC_BACKEND", backend)
    with pytest.raises(ValueError, match="DPC_BACKEND must be one of"):
        settings.get_settings()


def test_production_lands_and_exports_in_the_bucket(monkeypatch):
    for name in ("DPC_RAW_ROOT", "DPC_PROCESSED_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DPC_BACKEND", "production")
    monkeypatch.setenv("DPC_S3_BUCKET", "dpc-learning-data-dev")
    cfg = settings.get_settings()
    assert (cfg.raw_root, cfg.processed_root) == (
        "s3://dpc-learning-data-dev/raw",
        "s3://dpc-learning-data-dev/processed",
    )
    assert (cfg.redshift_workgroup, cfg.redshift_database, cfg.aws_conn_id) == ("dpc-elt", "dpc", "aws_default")


def test_duckdb_memory_cap_defaults_to_the_profiles_default_and_is_validated(monkeypatch):
    """The loader's cap and dbt's (profiles.yml) must agree: one DuckDB instance serves both in one process."""
    monkeypatch.delenv("DPC_DUCKDB_MEMORY_LIMIT", raising=False)
    assert settings.get_settings().duckdb_memory_limit == settings.DEFAULT_DUCKDB_MEMORY_LIMIT
    profiles = (settings.DBT_PROJECT_DIR / "profiles.yml").read_text(encoding="utf-8")
    assert f"env_var('DPC_DUCKDB_MEMORY_LIMIT', '{settings.DEFAULT_DUCKDB_MEMORY_LIMIT}')" in profiles
    for good in ("512MiB", "2GB", "1.5 GB"):
        monkeypatch.setenv("DPC_DUCKDB_MEMORY_LIMIT", good)
        settings.get_settings.cache_clear()
        assert settings.get_settings().duckdb_memory_limit == good
    for bad in ("1G'; drop table x; --", "lots", "80%", ""):
        monkeypatch.setenv("DPC_DUCKDB_MEMORY_LIMIT", bad)
        settings.get_settings.cache_clear()
        with pytest.raises(ValueError, match="DPC_DUCKDB_MEMORY_LIMIT must be a size"):
            settings.get_settings()
