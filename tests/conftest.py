"""Test-wide environment: a throwaway AIRFLOW_HOME and data directory, set before Airflow loads.

Connections and Variables would come from ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` here; the
embedded default needs none. The dbt manifest that the DAG renders from is built once if missing.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

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
for name in ("DPC_RAW_ROOT", "DPC_PROCESSED_ROOT", "DPC_DUCKDB_PATH", "DPC_OUTBOX_PATH", "DPC_SLACK_CONN_ID"):
    os.environ.pop(name, None)

if not (REPO / "include" / "dbt" / "target" / "manifest.json").exists():
    subprocess.run([str(REPO / "scripts" / "dbt_manifest.sh")], check=True)
