"""Fault injection at function level: the fault hook itself, and a failure inside each step that
writes — in the middle of the load, in the middle of the export, between the delete and the insert
of compute_readmit — followed by the re-run a user would do. The end state must equal a clean run.
(Every task of the DAG failing once under Airflow is in test_dag_runs.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dpc_elt.backends import embedded
from dpc_elt.core.errors import SAFE_MESSAGE_ERRORS, ManifestError, RawFileError, WarehouseBusyError
from dpc_elt.dev import faults
from tests.reliability import support
from tests.reliability.conftest import copy_of

RELOAD = "202504"


@pytest.fixture
def fault(monkeypatch, tmp_path):
    """Arm checkpoints: ``fault("a", "b")`` makes each fail once."""
    monkeypatch.setenv(faults.ENV_ONCE_DIR, str(tmp_path / "once"))

    def arm(*names: str) -> None:
        monkeypatch.setenv(faults.ENV_FAULT, ",".join(names))

    return arm


def corrected_delivery(cfg) -> None:
    """A corrected 202504: the y1 file of facility A loses its first case, so a reload changes data."""

    def drop_first_case(data: bytes) -> bytes:
        lines = data.split(b"\r\n")
        key = lines[1].split(b"\t")[:4]
        return b"\r\n".join([lines[0], *(line for line in lines[1:] if line.split(b"\t")[:4] != key)])

    support.rewrite_file(cfg, RELOAD, "FF1_" + support.FAC_A, drop_first_case)


@pytest.fixture(scope="module")
def reference(loaded_base, tmp_path_factory, dbt) -> dict:
    """The corrected month run through every step without any fault, on a copy of the same warehouse."""
    cfg = copy_of(loaded_base, tmp_path_factory.mktemp("reference") / "copy")
    corrected_delivery(cfg)
    support.pipeline_month(cfg, dbt, RELOAD)
    return {"tables": support.fingerprint(cfg), "exports": support.export_content(cfg)}


# ----------------------------------------------------------------------------------- the hook


def test_checkpoint_is_inert_without_dpc_fault(monkeypatch, tmp_path):
    monkeypatch.delenv(faults.ENV_FAULT, raising=False)
    monkeypatch.setenv(faults.ENV_ONCE_DIR, str(tmp_path / "once"))
    for name in ("copy_raw.mid_load", "task:copy_raw", ""):
        faults.checkpoint(name)
    assert not (tmp_path / "once").exists(), "an unarmed checkpoint must not touch the disk"


def test_checkpoint_fires_once_per_armed_name(fault, tmp_path):
    fault("task:copy_raw", "copy_raw.mid_load")
    faults.checkpoint("task:compute_readmit")  # not armed
    with pytest.raises(faults.InjectedFault, match="task:copy_raw"):
        faults.checkpoint("task:copy_raw")
    faults.checkpoint("task:copy_raw")  # fired already
    with pytest.raises(faults.InjectedFault, match=r"copy_raw\.mid_load"):
        faults.checkpoint("copy_raw.mid_load")
    faults.checkpoint("copy_raw.mid_load")
    assert sorted(p.name for p in (tmp_path / "once").iterdir()) == ["copy_raw.mid_load", "task%3Acopy_raw"]


def test_once_markers_default_to_the_work_dir(monkeypatch, tmp_path):
    from dpc_elt.core.settings import get_settings

    monkeypatch.setenv("DPC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(faults.ENV_ONCE_DIR, raising=False)
    monkeypatch.setenv(faults.ENV_FAULT, "x")
    get_settings.cache_clear()
    try:
        with pytest.raises(faults.InjectedFault):
            faults.checkpoint("x")
        assert (Path(get_settings().work_dir) / "faults" / "x").is_file()
    finally:
        get_settings.cache_clear()


def test_task_hook_names_the_task(fault):
    class TI:
        task_id = "build_stage.stg_dpc__d_run"

    fault("task:build_stage.stg_dpc__d_run")
    faults.task_started({"ti": type("Other", (), {"task_id": "copy_raw"})()})
    with pytest.raises(faults.InjectedFault):
        faults.task_started({"ti": TI()})


def test_why_the_hook_is_pre_execute_and_not_on_execute_callback():
    """Airflow 3.3's task runner logs and swallows an exception raised by an on_execute_callback (the
    task would go on and succeed); one raised by the pre_execute hook fails the task (every task of
    test_dag_runs.py fails that way). If Airflow ever changes this, the hook could move."""
    from types import SimpleNamespace

    import structlog
    from airflow.sdk.execution_time.task_runner import _run_task_state_change_callbacks

    def boom(context):
        raise faults.InjectedFault("from a callback")

    task = SimpleNamespace(on_execute_callback=[boom])
    _run_task_state_change_callbacks(task, "on_execute_callback", {}, structlog.get_logger("test"))  # no raise


def test_an_injected_fault_is_never_retried_and_never_quoted():
    """Not transient (no retry policy retries it) and not a safe-message error (notices show its type only)."""
    from dpc_elt.orchestration.retry import COPY_RAW_RETRY, VALIDATE_MANIFEST_RETRY

    error = faults.InjectedFault("injected fault at checkpoint x")
    assert not isinstance(error, OSError | TimeoutError | WarehouseBusyError)
    assert not isinstance(error, SAFE_MESSAGE_ERRORS)
    for policy in (COPY_RAW_RETRY["retry_policy"], VALIDATE_MANIFEST_RETRY["retry_policy"]):
        assert policy.evaluate(error, try_number=1, max_tries=5).action.value == "fail"


# --------------------------------------------------------------------------- faults inside steps


def test_failure_in_the_middle_of_the_load_leaves_the_month_as_it_was(loaded, reference, dbt, fault, monkeypatch):
    corrected_delivery(loaded)
    before = support.fingerprint(loaded)
    calls: list[str] = []
    real_run_file = embedded.run_file

    def spy(con, name, values, **identifiers):
        calls.append(f"{name}:{identifiers.get('table', '')}")
        return real_run_file(con, name, values, **identifiers)

    monkeypatch.setattr(embedded, "run_file", spy)
    fault("copy_raw.mid_load")
    with pytest.raises(faults.InjectedFault):
        support.load_raw(loaded, RELOAD)
    # The fault hit inside the transaction, after the month had been deleted and the first file inserted ...
    assert calls[:2] == ["copy_raw/create_raw_table:y1", "shared/delete_month:y1"]
    assert "shared/delete_month:d" in calls and calls[-1] == "copy_raw/insert_transcoded_pieces:y1", calls
    # ... and none of it is visible: the reload of the month was rolled back as a whole.
    assert support.fingerprint(loaded) == before
    # Clear copy_raw and what follows, as a user does: the run ends where a clean run ends.
    support.pipeline_month(loaded, dbt, RELOAD)
    assert support.fingerprint(loaded) == reference["tables"]
    assert support.export_content(loaded) == reference["exports"]


def test_failure_in_the_middle_of_the_export_is_repaired_by_the_rerun(loaded, reference, dbt, fault):
    corrected_delivery(loaded)
    support.load_raw(loaded, RELOAD)
    dbt.build_month(loaded, RELOAD)
    months = embedded.EmbeddedBackend(loaded).compute_readmit(RELOAD)  # what export_parquet reads from XCom
    assert len(months) >= 2, "a reload touching a readmission pair exports the neighbour month too"
    fault("export_parquet.mid_export")
    with pytest.raises(faults.InjectedFault):
        embedded.EmbeddedBackend(loaded).export_months(months)
    # The first month's prefix was cleared and its Parquet uploaded, but its manifest not yet written:
    # a reader waiting for _manifest.json never sees the half-written month.
    first = Path(loaded.processed_root) / f"yyyymm={months[0]}"
    assert sorted(p.name for p in first.iterdir()) == ["fact_case_summary.parquet"]
    support.export(loaded, months)  # export_parquet cleared and run again
    assert support.export_content(loaded) == reference["exports"]
    assert support.fingerprint(loaded) == reference["tables"]


def test_failure_inside_compute_readmit_rolls_back_its_delete(loaded, reference, dbt, monkeypatch):
    corrected_delivery(loaded)
    support.load_raw(loaded, RELOAD)
    dbt.build_month(loaded, RELOAD)
    before = support.fingerprint(loaded)
    real_execute = embedded.execute

    def fail_before_insert(con, statement, values):
        if statement.lstrip().lower().startswith("insert into mart.fact_case_summary"):
            raise faults.InjectedFault("injected fault between delete and insert")
        return real_execute(con, statement, values)

    monkeypatch.setattr(embedded, "execute", fail_before_insert)
    with pytest.raises(faults.InjectedFault):
        embedded.EmbeddedBackend(loaded).compute_readmit(RELOAD)
    assert support.fingerprint(loaded) == before, "the delete of compute_readmit must roll back"
    monkeypatch.setattr(embedded, "execute", real_execute)
    months = embedded.EmbeddedBackend(loaded).compute_readmit(RELOAD)
    support.export(loaded, sorted(set(months) | {RELOAD}))
    assert support.fingerprint(loaded) == reference["tables"]
    assert support.export_content(loaded) == reference["exports"]


def test_stage_rollback_then_rebuild_equals_a_clean_run(loaded, reference, dbt):
    """build_stage failed after some models replaced the month: rollback_stage empties the month in
    stage, the user clears build_stage, and the month is whole again."""
    corrected_delivery(loaded)
    support.load_raw(loaded, RELOAD)
    result = dbt.invoke(loaded, "run", "--select", "stg_dpc__y1_cases", month=RELOAD)
    assert result.success  # one stage model rebuilt, the others not: a half-built month
    deleted = embedded.EmbeddedBackend(loaded).rollback_stage(RELOAD)
    assert set(deleted) == {"stg_dpc__y1_cases", "stg_dpc__y1_segments", "stg_dpc__ef_in_stays", "stg_dpc__d"}
    with support.connect(loaded) as con:
        for table in deleted:
            assert con.execute(f"select count(*) from stage.{table} where yyyymm = ?", [RELOAD]).fetchone() == (0,)
    dbt.build_month(loaded, RELOAD)
    months = embedded.EmbeddedBackend(loaded).compute_readmit(RELOAD)
    support.export(loaded, sorted(set(months) | {RELOAD}))
    assert support.fingerprint(loaded) == reference["tables"]
    assert support.export_content(loaded) == reference["exports"]


def test_bad_input_is_failed_at_once_and_a_busy_warehouse_is_retried():
    """The retry policies the DAG uses: input errors fail without retry, a locked warehouse retries."""
    from dpc_elt.orchestration.retry import COPY_RAW_RETRY

    policy = COPY_RAW_RETRY["retry_policy"]
    assert policy.evaluate(WarehouseBusyError("locked"), 1, 5).action.value == "retry"
    for error in (RawFileError("f", "rule"), ManifestError("f", "rule")):
        assert policy.evaluate(error, 1, 5).action.value == "fail"


def test_clearing_one_stage_task_after_a_rollback_is_caught_by_dbt_tests(loaded, dbt):
    """Against the runbook, only the failed build_stage task is cleared after rollback_stage emptied the
    month: the other stage models stay empty for it. dbt_tests refuses the run instead of letting an
    incomplete month through (assert_stage_months_match_raw)."""
    embedded.EmbeddedBackend(loaded).rollback_stage(RELOAD)
    assert dbt.invoke(loaded, "run", "--select", "stg_dpc__d", month=RELOAD).success
    result = dbt.invoke(loaded, "test", "--select", "assert_stage_months_match_raw", month=RELOAD)
    assert [str(r.status) for r in result.result] == ["fail"]
    dbt.build_month(loaded, RELOAD)  # clearing the whole state, as the runbook says
    result = dbt.invoke(loaded, "test", "--select", "assert_stage_months_match_raw", month=RELOAD)
    assert [str(r.status) for r in result.result] == ["pass"]
