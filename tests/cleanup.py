"""Helpers shared by test folders (importable as ``tests.cleanup``; no side effects)."""

from __future__ import annotations


def close_dbt_duckdb() -> None:
    """dbt-duckdb keeps its in-process database open for the next dbt call (class attribute
    ``DuckDBConnectionManager._ENV``). Close it between tests that change DPC_DUCKDB_PATH and at the
    end, so DuckDB is torn down cleanly instead of reporting leaked objects at interpreter exit."""
    import gc
    import sys

    connections = sys.modules.get("dbt.adapters.duckdb.connections")
    if connections is not None:
        manager = connections.DuckDBConnectionManager
        if manager._ENV is not None:
            manager._ENV.close()
            manager._ENV = None
    gc.collect()
