"""dbt's DuckDB connection gets the memory cap from DPC_DUCKDB_MEMORY_LIMIT, as the loader's does."""

from __future__ import annotations

from readmit_support import DbtProject

from tests.cleanup import close_dbt_duckdb


def test_dbt_runs_with_the_configured_duckdb_memory_cap(tmp_path):
    project = DbtProject(duckdb_path=tmp_path / "dpc.duckdb", work_dir=tmp_path)
    close_dbt_duckdb()  # dbt-duckdb keeps the previous test's database open in-process
    try:
        result = project.invoke(
            "show",
            "--inline",
            "select current_setting('memory_limit') as memory_limit",
            env={"DPC_DUCKDB_MEMORY_LIMIT": "256MiB"},
        )
    finally:
        close_dbt_duckdb()
    assert result.success, result.exception
    assert [tuple(row) for row in result.result.results[0].agate_table.rows] == [("256.0 MiB",)]
