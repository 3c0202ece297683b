"""The DAG under Airflow (dag.test): a month that is already loaded is run again with EVERY task
failing once, each failure cleared and resumed the way the runbook says — and the end state is the
state before the re-run (a re-run changes nothing).

One module-scoped story keeps this to one dag.test() run plus the resumed rounds:

1. 202503 and 202504 are loaded through every step at function level (the same calls the tasks make),
   202504's folder also holds an unlisted extra file; the warehouse and the exports are fingerprinted;
2. dag.test() for 202504 with ``DPC_FAULT`` arming ``task:<id>`` for every task of the DAG plus
   ``copy_raw.mid_load`` and ``export_parquet.mid_export``. Each round the run fails somewhere; the
   failed tasks are cleared with everything downstream (a whole ASL state for validate_manifest and
   build_stage, as the runbook says) and the run resumes, until it succeeds.

Everything written to stdout/stderr meanwhile (dag.test() prints the task logs there) is kept for the
patient-data check; every ``duckdb.connect`` is recorded with the task that made it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from dpc_elt.core import settings
from dpc_elt.dev import faults
from tests.contract import expected_summary, summary_by_key
from tests.reliability import airflow_support as af
from tests.reliability import support

pytestmark = pytest.mark.e2e

MONTH = "202504"
UNLISTED = "README_from_the_hospital.txt"
MAX_ROUNDS = 30


def checkpoints(task_ids) -> list[str]:
    return [f"task:{t}" for t in sorted(task_ids)] + ["copy_raw.mid_load", "export_parquet.mid_export"]


@pytest.fixture(scope="module")
def story(request, tmp_path_factory, airflow_db, dbt):
    from dpc_elt.core.settings import get_settings
    from dpc_elt.orchestration.cosmos_config import _configs

    capman = request.config.pluginmanager.getplugin("capturemanager")
    data = tmp_path_factory.mktemp("story") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DPC_DATA_DIR", str(data))
        mp.delenv(faults.ENV_FAULT, raising=False)
        get_settings.cache_clear()
        _configs.cache_clear()
        cfg = get_settings()
        support.write_scenario(cfg.raw_root)
        (support.month_dir(cfg, MONTH) / UNLISTED).write_text("please call us", encoding="utf-8")
        for month in ("202503", MONTH):  # both months loaded once, at function level
            support.pipeline_month(cfg, dbt, month)
        result = {
            "cfg": cfg,
            "pools": {task_id: task.pool for task_id, task in af.dag().task_dict.items()},
            "first_tables": support.fingerprint(cfg),
            "first_exports": support.export_content(cfg),
        }

        connects = _record_duckdb_connects(mp)
        if capman is not None:
            capman.read_global_capture()  # drop what came before
        mp.setenv(faults.ENV_FAULT, ",".join(checkpoints(af.dag().task_dict)))
        mp.setenv(faults.ENV_ONCE_DIR, str(data / "once"))
        started = time.monotonic()
        run = af.run_month(MONTH)
        rounds = [_round(run, cfg)]
        while af.run_state(run) != "success" and len(rounds) < MAX_ROUNDS:
            run = af.clear_and_resume(run, af.to_clear_for(af.failed_tasks(run)))
            rounds.append(_round(run, cfg))
        seconds = round(time.monotonic() - started, 1)
        result.update(
            chaos_state=af.run_state(run),
            chaos_tasks=af.states(run),
            rounds=rounds,
            seconds=seconds,
            chaos_tables=support.fingerprint(cfg),
            chaos_exports=support.export_content(cfg),
            connects=connects,
            markers=sorted(p.name for p in (data / "once").iterdir()),
            output="".join(capman.read_global_capture()) if capman is not None else None,
            failure_details=[d for r in rounds for d in r["failure_details"]],
        )
        get_settings.cache_clear()
        _configs.cache_clear()
    return result


def _record_duckdb_connects(mp) -> list[str]:
    """Wrap duckdb.connect to note which task opened it: calls made inside the task runner's
    ``_execute_task`` are attributed to AIRFLOW_CTX_TASK_ID, which the runner sets for the task."""
    import duckdb

    seen: list[str] = []
    real = duckdb.connect

    def connect(*args, **kwargs):
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_name != "_execute_task":
            frame = frame.f_back
        if frame is not None:
            seen.append(os.environ.get("AIRFLOW_CTX_TASK_ID", "?"))
        return real(*args, **kwargs)

    mp.setattr(duckdb, "connect", connect)
    return seen


def _round(run, cfg) -> dict:
    """What one round left: failed tasks, the month's stage rows, the failures recorded for the notice."""
    return {
        "failed": af.failed_tasks(run),
        "notify_failure": af.states(run).get("notify_failure"),
        "stage_rows": _stage_rows(cfg),
        "failure_details": _failure_details(run),
    }


def _stage_rows(cfg) -> int | None:
    with support.connect(cfg) as con:
        try:
            return con.execute("select count(*) from stage.stg_dpc__ef_in_stays where yyyymm = ?", [MONTH]).fetchone()[
                0
            ]
        except Exception:
            return None


def _failure_details(dag_run) -> list[dict]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from dpc_elt.notify import FAILURE_XCOM_KEY

    with create_session() as session:
        rows = session.scalars(
            select(XComModel.value).where(XComModel.run_id == dag_run.run_id, XComModel.key == FAILURE_XCOM_KEY)
        ).all()
    return [json.loads(v) if isinstance(v, str) else v for v in rows]


# ------------------------------------------------------------------------------------------ chaos


def test_every_task_failed_once(story):
    failed = set().union(*(set(r["failed"]) for r in story["rounds"]))
    assert failed == set(story["pools"]), sorted(set(story["pools"]) - failed)
    assert len(story["markers"]) == len(checkpoints(story["pools"])), story["markers"]
    # copy_raw failed twice: at its start, then in the middle of the load; export_parquet likewise
    assert sum("copy_raw" in r["failed"] for r in story["rounds"]) == 2
    assert sum("export_parquet" in r["failed"] for r in story["rounds"]) == 2


def test_the_rerun_recovers_to_the_state_before_it(story):
    """Re-running a loaded month, even through every failure, leaves every table and export as it was."""
    assert story["chaos_state"] == "success", story["rounds"][-1]
    tasks = story["chaos_tasks"]
    assert tasks.pop("rollback_stage") == "skipped"
    assert tasks.pop("notify_failure") in ("skipped", "success")  # it may report notify_success's fault
    assert set(tasks.values()) == {"success"}, tasks
    assert story["chaos_tables"] == story["first_tables"]
    assert story["chaos_exports"] == story["first_exports"]
    assert not support.duplicates(story["cfg"])


def test_the_result_equals_the_contract(story):
    cfg = story["cfg"]
    expected = expected_summary(cfg.raw_root, ["202503", MONTH])
    assert any(v["is_readmission_30d"] for v in expected.values())
    assert support.mart_summary(cfg) == expected
    for month in ("202503", MONTH):
        columns, rows = story["chaos_exports"][month]["rows"]["fact_case_summary.parquet"]
        assert summary_by_key(columns, rows) == support.of_month(expected, month)


def test_a_failed_stage_build_was_rolled_back_before_the_clear(story):
    """In the round where build_stage failed, rollback_stage emptied the month in stage; the next
    round (build_stage cleared) filled it again."""
    rounds = story["rounds"]
    failed_stage = next(i for i, r in enumerate(rounds) if any(t.startswith("build_stage.") for t in r["failed"]))
    assert rounds[failed_stage]["stage_rows"] == 0
    assert rounds[failed_stage + 1]["stage_rows"] == rounds[-1]["stage_rows"] > 0


# ------------------------------------------------------------------------------- one writer at once


def test_only_pool_tasks_opened_the_warehouse(story):
    """Every task that opened DuckDB (recorded at duckdb.connect) holds a slot of the one-slot pool."""
    openers = set(story["connects"])
    assert {"copy_raw", "compute_readmit", "export_parquet", "notify_success"} <= openers, openers
    pools = story["pools"]
    assert {t: pools.get(t) for t in openers if pools.get(t) != settings.WAREHOUSE_POOL} == {}


# ----------------------------------------------------------------------------------- patient data


def test_no_patient_data_in_logs_notices_or_errors(story):
    cfg = story["cfg"]
    ids, names = support.patient_values(cfg.raw_root)
    assert ids >= support.scenario_patient_ids() and names == {support.SECRET_DISEASE_NAME}
    outbox = Path(cfg.outbox_path).read_text(encoding="utf-8")
    # one notice per round in which notify_failure reported (not when it failed itself, nor when it ran
    # before notify_success's injected failure and found nothing to report)
    notices = sum(r["notify_failure"] == "success" for r in story["rounds"][:-1])
    assert notices >= len(story["rounds"]) - 3
    assert outbox.count('"status": "FAILURE"') == notices
    assert not support.leaked(outbox, ids, names)
    assert len(story["failure_details"]) >= len(story["rounds"]) - 1
    assert {d["error_type"] for d in story["failure_details"]} == {"InjectedFault"}
    details = json.dumps(story["failure_details"], ensure_ascii=False)
    assert not support.leaked(details, ids, names)
    if story["output"] is None:
        pytest.skip("output capture is off (-s): task logs were not kept")
    assert "[DAG TEST] starting task_id=copy_raw" in story["output"], "the task logs must be in the capture"
    assert "InjectedFault" in story["output"]
    assert not support.leaked(story["output"], ids, names)


def test_the_unlisted_file_is_reported(story):
    output = story["output"]
    if output is None:
        pytest.skip("output capture is off (-s): task logs were not kept")
    assert f"ignored {UNLISTED}: in the month folder but not listed in _manifest.json" in output
    last = json.loads(Path(story["cfg"].outbox_path).read_text(encoding="utf-8").splitlines()[-1])
    assert last["status"] == "SUCCESS"
    assert "1 file(s) in the month folder were not in the manifest and were ignored" in last["notes"]
