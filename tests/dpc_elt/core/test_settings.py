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


def test_no_manifest_queue_by_default(monkeypatch):
    monkeypatch.delenv("DPC_MANIFEST_QUEUE_URL", raising=False)
    assert settings.get_settings().manifest_queue_url == ""


@pytest.mark.parametrize(
    "url",
    [
        "https://sqs.ap-northeast-1.amazonaws.com/123456789012/dpc-elt-manifests-prod",
        "http://127.0.0.1:5000/123456789012/dpc-elt-manifests",  # an endpoint such as moto's
    ],
)
def test_a_manifest_queue_url_is_taken_with_the_raw_root_on_s3(monkeypatch, url):
    monkeypatch.setenv("DPC_BACKEND", "production")
    monkeypatch.setenv("DPC_S3_BUCKET", "dpc-learning-data-dev")
    monkeypatch.delenv("DPC_RAW_ROOT", raising=False)
    monkeypatch.setenv("DPC_MANIFEST_QUEUE_URL", f" {url} ")
    assert settings.get_settings().manifest_queue_url == url


@pytest.mark.parametrize(
    "url",
    [
        "dpc-elt-manifests",
        "arn:aws:sqs:ap-northeast-1:123456789012:dpc-elt-manifests",
        "https://sqs.ap-northeast-1.amazonaws.com/123456789012/dpc-elt-manifests.fifo",
        "https://sqs.ap-northeast-1.amazonaws.com/1234/dpc-elt-manifests",
    ],
)
def test_anything_but_a_standard_queue_url_is_refused_naming_the_variable(monkeypatch, url):
    monkeypatch.setenv("DPC_RAW_ROOT", "s3://dpc-learning-data-dev/raw")
    monkeypatch.setenv("DPC_MANIFEST_QUEUE_URL", url)
    with pytest.raises(ValueError, match="DPC_MANIFEST_QUEUE_URL must be a standard SQS queue URL"):
        settings.get_settings()


def test_a_manifest_queue_needs_the_raw_root_on_s3(monkeypatch):
    monkeypatch.delenv("DPC_RAW_ROOT", raising=False)
    monkeypatch.delenv("DPC_BACKEND", raising=False)
    monkeypatch.setenv("DPC_MANIFEST_QUEUE_URL", "https://sqs.ap-northeast-1.amazonaws.com/123456789012/q")
    with pytest.raises(ValueError, match="needs the raw root on S3"):
        settings.get_settings()
