"""`make run-month` for a month that has no _manifest.json (a typo in the month or the root): it says at
once where it looked and how to wait longer, fails within seconds, and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_missing_manifest_fails_at_once_naming_the_path_and_how_to_wait(tmp_path):
    data = tmp_path / "data"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.prefix) / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "DPC_DATA_DIR": str(data),
        "DPC_DUCKDB_PATH": str(data / "warehouse" / "dpc.duckdb"),
        "PYTHONPATH": str(REPO / "plugins"),
    }
    for name in ("DPC_RAW_ROOT", "DPC_PROCESSED_ROOT", "MANIFEST_WAIT_MINUTES"):
        env.pop(name, None)
    started = time.monotonic()
    done = subprocess.run(
        [str(REPO / "scripts" / "run_month.sh"), "202411"], cwd=REPO, env=env, capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    assert done.returncode == 1
    assert seconds < 60
    message = f"<== 202411: no manifest at {data / 'raw'}/yyyymm=202411/_manifest.json."
    assert message in done.stdout, done.stdout + done.stderr
    assert "MANIFEST_WAIT_MINUTES=30" in done.stdout
    assert not (data / "warehouse").exists() and not (data / "processed").exists()  # nothing changed
