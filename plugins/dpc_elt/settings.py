"""All configuration in one place, read lazily from ``DPC_*`` environment variables.

With no variable set, everything points at the embedded default under ``<repo>/data``. Secrets
never live here: Slack and AWS credentials come from Airflow Connections named below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = REPO_ROOT / "include"
SQL_DIR = INCLUDE_DIR / "sql"
DBT_PROJECT_DIR = INCLUDE_DIR / "dbt"
ASL_PATH = INCLUDE_DIR / "asl" / "dpc_elt.asl.json"
MANIFEST_SCHEMA_PATH = INCLUDE_DIR / "schemas" / "manifest.schema.json"

EMBEDDED = "embedded"
PRODUCTION = "production"
# The module that does each step's warehouse work, per backend. Production (S3 + Redshift through the
# amazon provider) plugs in here; until then DPC_BACKEND=production is refused rather than run on DuckDB.
BACKEND_MODULES = {EMBEDDED: "dpc_elt.embedded"}

# Schemas the pipeline writes; identifiers in SQL templates come only from these allow-lists.
RAW_SCHEMA = "raw"
STAGE_SCHEMA = "stage"
MART_SCHEMA = "mart"
REF_SCHEMA = "ref"
STAGE_TABLES = ("stg_dpc__y1_cases", "stg_dpc__y1_segments", "stg_dpc__ef_in", "stg_dpc__d")
SUMMARY_TABLE = "fact_case_summary"
EXPORT_TABLES = (SUMMARY_TABLE,)

WAREHOUSE_POOL = "dpc_warehouse"


@dataclass(frozen=True)
class Settings:
    backend: str
    environment: str
    raw_root: str
    processed_root: str
    duckdb_path: str
    outbox_path: str
    work_dir: str
    slack_conn_id: str
    slack_channel: str
    manifest_poke_seconds: int
    dbt_executable_path: str


def _data_dir() -> Path:
    return Path(os.environ.get("DPC_DATA_DIR", REPO_ROOT / "data"))


@cache
def get_settings() -> Settings:
    """Settings from the environment; cached, call ``get_settings.cache_clear()`` in tests."""
    data = _data_dir()
    backend = os.environ.get("DPC_BACKEND", EMBEDDED)
    if backend not in BACKEND_MODULES:
        raise ValueError(f"DPC_BACKEND must be one of {sorted(BACKEND_MODULES)}, got {backend!r}")
    return Settings(
        backend=backend,
        environment=os.environ.get("DPC_ENVIRONMENT", "local"),
        raw_root=os.environ.get("DPC_RAW_ROOT", str(data / "raw")),
        processed_root=os.environ.get("DPC_PROCESSED_ROOT", str(data / "processed")),
        duckdb_path=os.environ.get("DPC_DUCKDB_PATH", str(data / "warehouse" / "dpc.duckdb")),
        outbox_path=os.environ.get("DPC_OUTBOX_PATH", str(data / "outbox" / "notifications.jsonl")),
        work_dir=os.environ.get("DPC_WORK_DIR", str(data / "work")),
        slack_conn_id=os.environ.get("DPC_SLACK_CONN_ID", ""),
        slack_channel=os.environ.get("DPC_SLACK_CHANNEL", "#dpc-alerts"),
        manifest_poke_seconds=int(os.environ.get("DPC_MANIFEST_POKE_SECONDS", "60")),
        dbt_executable_path=os.environ.get("DPC_DBT_EXECUTABLE", ""),
    )
