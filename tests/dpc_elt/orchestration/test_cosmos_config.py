"""What the Cosmos configuration hands to dbt, and how the DAG file reads the manifest."""

from __future__ import annotations

from pathlib import Path

from dpc_elt.core import settings
from dpc_elt.orchestration import cosmos_config


def test_dbt_gets_the_same_month_warehouse_and_cap_as_the_loader():
    cfg = settings.get_settings()
    env = cosmos_config.dbt_env()
    assert env["DPC_DUCKDB_PATH"] == cfg.duckdb_path
    assert env["DPC_DUCKDB_MEMORY_LIMIT"] == cfg.duckdb_memory_limit
    assert env["DPC_YYYYMM"] == cosmos_config.MONTH_TEMPLATE
    assert "vars" not in cosmos_config.operator_args()  # a changed --vars re-parses the whole dbt project


def test_the_manifest_is_read_as_a_local_path():
    """Not an ObjectStoragePath: its first open() loads every provider filesystem and every plugin,
    about a second of each DAG parse and task start (docs/performance.md)."""
    manifest_path = cosmos_config._configs()["project_config"].manifest_path
    assert type(manifest_path) is type(Path()) and manifest_path == cosmos_config.MANIFEST_PATH


def test_dbt_tests_has_a_partial_parse_cache_like_a_group():
    from cosmos import settings as cosmos_settings

    task = cosmos_config.dbt_test_task("dbt_tests")
    assert task.cache_dir == cosmos_settings.cache_dir / "dpc_elt__dbt_tests"
    assert task.env["DPC_YYYYMM"] == cosmos_config.MONTH_TEMPLATE
