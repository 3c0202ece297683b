"""Each month's dbt tasks start from `make manifest`'s parse instead of parsing the whole project.

dbt keeps a partial parse only while the CLI vars, `--profile`/`--target` and the connection values
match the saved one. `scripts/dbt_manifest.sh` parses as the Cosmos tasks run (same warehouse path,
`--profile`, `--target`, no vars) and the month reaches dbt as the env var DPC_YYYYMM, which the
macros read only while dbt executes (`execute`), so a new month re-parses no file at all
(docs/performance.md). The control shows the test can fail: the month as a dbt var forces a full parse.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from dpc_elt.core import settings
from dpc_elt.orchestration import cosmos_config

REPO = settings.DBT_PROJECT_DIR.parents[1]


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    """`scripts/dbt_manifest.sh` for one warehouse path, writing into a temporary target path."""
    work = tmp_path_factory.mktemp("partial_parse")
    env = {k: v for k, v in os.environ.items() if k != "DPC_YYYYMM"}
    env.update(
        DPC_DUCKDB_PATH=str(work / "warehouse" / "dpc.duckdb"),
        DBT_TARGET_PATH=str(work / "target"),
        DBT_LOG_PATH=str(work / "logs"),
    )
    subprocess.run([str(REPO / "scripts" / "dbt_manifest.sh")], env=env, check=True, capture_output=True)
    assert (work / "target" / "partial_parse.msgpack").exists()
    return work


def parse_like_a_cosmos_task(work, monkeypatch, *extra: str) -> list[str]:
    """`dbt parse` with the flags a Cosmos task passes; returns the names of the events dbt fired."""
    from dbt.cli.main import dbtRunner

    profile = cosmos_config._configs()["profile_config"]
    project = str(settings.DBT_PROJECT_DIR)
    target = work / f"target-{len(extra)}"
    target.mkdir()
    (target / "partial_parse.msgpack").write_bytes((work / "target" / "partial_parse.msgpack").read_bytes())
    monkeypatch.setenv("DPC_DUCKDB_PATH", str(work / "warehouse" / "dpc.duckdb"))
    monkeypatch.setenv("DPC_YYYYMM", "202504")
    events: list[str] = []
    result = dbtRunner(callbacks=[lambda event: events.append(event.info.name)]).invoke(
        [
            "parse",
            "--project-dir",
            project,
            "--profiles-dir",
            project,
            "--profile",
            profile.profile_name,
            "--target",
            profile.target_name,
            "--no-static-parser",
            "--target-path",
            str(target),
            "--log-path",
            str(work / "logs"),
            *extra,
        ]
    )
    assert result.success, result.exception
    return events


def test_a_new_month_re_parses_no_file(parsed, monkeypatch):
    events = parse_like_a_cosmos_task(parsed, monkeypatch)
    assert "UnableToPartialParse" not in events
    assert "PartialParsingFile" not in events  # fired per re-parsed file (the stage models, when they read it at parse)
    assert "PartialParsingSkipParsing" in events


def test_control_the_month_as_a_dbt_var_would_parse_everything(parsed, monkeypatch):
    events = parse_like_a_cosmos_task(parsed, monkeypatch, "--vars", json.dumps({"yyyymm": "202504"}))
    assert "UnableToPartialParse" in events
