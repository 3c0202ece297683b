"""OpenLineage (issue 16 §2): with a file transport configured, `make run-month` emits a START and a
COMPLETE event for every task, and the steps name the month's inputs and outputs — the listed raw files
into the raw tables (copy_raw), raw through stage to mart (Cosmos' dbt events), mart.fct_cases into
mart.fact_case_summary (compute_readmit) and that table into the month's Parquet file (export_parquet) —
under the same dataset names, so the graph joins up. Names and paths only: no patient value.

The provider reads its configuration once per process, so the month runs in a subprocess, as a user's
`make run-month` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.reliability.support import leaked, patient_values

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
MONTH = "202504"


@pytest.fixture(scope="module")
def lineage(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openlineage")
    data, events = tmp / "data", tmp / "openlineage.jsonl"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.prefix) / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "DPC_DATA_DIR": str(data),
        "DPC_DUCKDB_PATH": str(data / "warehouse" / "dpc.duckdb"),
        "PYTHONPATH": str(REPO / "plugins"),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "dpc_elt_test",
    }
    for name in ("DPC_RAW_ROOT", "DPC_PROCESSED_ROOT", "MANIFEST_WAIT_MINUTES", "FACILITY_CD"):
        env.pop(name, None)
    generate = [sys.executable, "-m", "dpc_elt.dev.synthetic", "--facilities", "2", "--months", MONTH]
    subprocess.run([*generate, "--out", str(data / "raw"), "--seed", "5", "--quiet"], env=env, check=True)
    done = subprocess.run(
        [str(REPO / "scripts" / "run_month.sh"), MONTH], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = events.read_text(encoding="utf-8").splitlines()
    by_job: dict[str, dict[str, dict]] = defaultdict(dict)
    for line in lines:
        event = json.loads(line)
        by_job[event["job"]["name"]][event["eventType"]] = event
    return data, by_job, "\n".join(lines)


def names(event: dict, side: str) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in event.get(side, [])}


def test_every_task_reports_start_and_complete(lineage):
    _, by_job, _ = lineage
    for task in ("validate_manifest.check_manifest", "copy_raw", "build_stage.dbt_run", "build_mart.dbt_build"):
        assert {"START", "COMPLETE"} <= set(by_job[f"dpc_elt.{task}"]), task
    for task in ("compute_readmit", "dbt_tests", "export_parquet", "notify_success"):
        assert {"START", "COMPLETE"} <= set(by_job[f"dpc_elt.{task}"]), task
    assert by_job["dpc_elt.copy_raw"]["COMPLETE"]["job"]["namespace"] == "dpc_elt_test"


def test_the_steps_name_the_months_inputs_and_outputs_and_join_up(lineage):
    data, by_job, _ = lineage
    manifest = json.loads((data / "raw" / f"yyyymm={MONTH}" / "_manifest.json").read_text(encoding="utf-8"))
    copy_raw = by_job["dpc_elt.copy_raw"]["COMPLETE"]
    listed = {("file", str((data / "raw" / f"yyyymm={MONTH}" / f["path"]).resolve())) for f in manifest["files"]}
    assert names(copy_raw, "inputs") == listed
    raw_tables = names(copy_raw, "outputs")
    assert {name for _, name in raw_tables} == {"dpc.raw.y1", "dpc.raw.ef_in", "dpc.raw.d"}

    stage = by_job["dpc_elt.build_stage.dbt_run"]["COMPLETE"]  # Cosmos' dbt lineage, the same names
    assert raw_tables <= names(stage, "inputs")
    mart = by_job["dpc_elt.build_mart.dbt_build"]["COMPLETE"]
    fct_cases = {d for d in names(mart, "outputs") if d[1] == "dpc.mart.fct_cases"}
    assert fct_cases and names(stage, "outputs") & names(mart, "inputs")

    readmit = by_job["dpc_elt.compute_readmit"]["COMPLETE"]
    assert names(readmit, "inputs") == fct_cases
    (summary,) = names(readmit, "outputs")
    assert summary[1] == "dpc.mart.fact_case_summary"

    export = by_job["dpc_elt.export_parquet"]["COMPLETE"]
    assert summary in names(export, "inputs")
    parquet = ("file", str((data / "processed" / f"yyyymm={MONTH}" / "fact_case_summary.parquet").resolve()))
    assert parquet in names(export, "outputs")


def test_no_event_holds_a_patient_value(lineage):
    data, _, text = lineage
    ids, free_texts = patient_values(data / "raw")
    assert not leaked(text, ids, free_texts)
