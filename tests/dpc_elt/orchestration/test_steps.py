"""The ASL Retry blocks as retry policies: transient errors are retried, bad input never."""

from __future__ import annotations

import time

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction

from dpc_elt.core.errors import ManifestError, ParameterError, RawFileError, WarehouseBusyError
from dpc_elt.orchestration.retry import COPY_RAW_RETRY, VALIDATE_MANIFEST_RETRY


@pytest.mark.parametrize(
    ("policy", "error", "action"),
    [
        (VALIDATE_MANIFEST_RETRY, ManifestError("_manifest.json", "invalid JSON", line=3), RetryAction.FAIL),
        (VALIDATE_MANIFEST_RETRY, ParameterError("yyyymm"), RetryAction.FAIL),
        (VALIDATE_MANIFEST_RETRY, ConnectionResetError("storage hiccup"), RetryAction.RETRY),
        (VALIDATE_MANIFEST_RETRY, TimeoutError(), RetryAction.RETRY),
        (VALIDATE_MANIFEST_RETRY, KeyError("bug"), RetryAction.FAIL),
        (COPY_RAW_RETRY, RawFileError("EFn_131000123_2504.txt", "wrong number of fields", line=9), RetryAction.FAIL),
        (COPY_RAW_RETRY, WarehouseBusyError("dpc.duckdb: locked"), RetryAction.RETRY),
        (COPY_RAW_RETRY, FileNotFoundError("gone"), RetryAction.FAIL),
        (COPY_RAW_RETRY, ValueError("bug"), RetryAction.FAIL),
    ],
)
def test_retry_policy_decides_like_the_asl_error_equals(policy, error, action):
    decision = policy["retry_policy"].evaluate(error, try_number=1, max_tries=policy["retries"])
    assert decision.action == action, decision.reason


def test_run_local_reports_each_task_as_dag_test_finishes_it(monkeypatch):
    """run_local wraps the function dag.test runs every task through: one line per finished task."""
    import io
    from types import SimpleNamespace

    from airflow.sdk.definitions import dag as dag_module

    from dpc_elt.dev.run_local import task_progress

    calls = []

    def fake_run_task(*, ti, task, run_triggerer=False):
        calls.append((ti.task_id, run_triggerer))
        ti.state = SimpleNamespace(value="success")
        return "result"

    monkeypatch.setattr(dag_module, "_run_task", fake_run_task)
    out = io.StringIO()
    with task_progress(out):
        ti = SimpleNamespace(task_id="copy_raw", state=None)
        assert dag_module._run_task(ti=ti, task=None, run_triggerer=True) == "result"
    assert dag_module._run_task is fake_run_task  # restored
    assert calls == [("copy_raw", True)]
    (line,) = out.getvalue().splitlines()
    assert line.split()[:2] == ["copy_raw", "success"] and line.endswith(" s")
    with task_progress(None):  # quiet: not wrapped at all
        assert dag_module._run_task is fake_run_task


def test_run_local_summary_names_only_what_did_not_succeed(monkeypatch, capsys):
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from dpc_elt.dev import run_local

    def ti(task_id, state, minute):
        return SimpleNamespace(task_id=task_id, state=state, start_date=datetime(2025, 4, 1, 3, minute, tzinfo=UTC))

    tis = [
        ti("copy_raw", "success", 1),
        ti("rollback_stage", "skipped", 3),
        ti("build_mart.fct_cases_run", "failed", 2),
    ]
    run = SimpleNamespace(run_id="manual__x", state="failed", get_task_instances=lambda: tis)
    months = []
    monkeypatch.setattr(run_local, "_parse_dag", lambda dag_folder=None: "the dag")
    monkeypatch.setattr(run_local, "_manifest_exists", lambda uri: True)
    monkeypatch.setattr(run_local, "run_month", lambda yyyymm, **kwargs: months.append(yyyymm) or run)
    assert run_local.main(["--yyyymm", "202504", "202505", "--quiet"]) == 1
    assert months == ["202504"]  # the first month that does not succeed stops the rest
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "==> month 1/2: dpc_elt for 202504"
    assert lines[1].startswith("dpc_elt 202504: run manual__x ended failed in ")
    assert lines[2:5] == ["  1 tasks succeeded", "  failed: build_mart.fct_cases_run", "  skipped: rollback_stage"]
    assert not any(line.startswith("Quality report") for line in lines)
    assert lines[-1].startswith("<== month 1/2: 202504 FAILED")


def test_run_local_names_a_missing_manifest_at_once_and_runs_nothing(monkeypatch, capsys, tmp_path):
    from dpc_elt.core.settings import get_settings
    from dpc_elt.dev import run_local

    monkeypatch.setenv("DPC_RAW_ROOT", str(tmp_path / "raw"))
    get_settings.cache_clear()
    monkeypatch.setattr(run_local, "_parse_dag", lambda dag_folder=None: pytest.fail("the DAG was parsed"))
    assert run_local.main(["--yyyymm", "202504", "--manifest-wait-minutes", "0"]) == 1
    (*_, last) = capsys.readouterr().err.splitlines()
    assert last.startswith(f"<== 202504: no manifest at {tmp_path / 'raw'}/yyyymm=202504/_manifest.json.")
    assert "MANIFEST_WAIT_MINUTES=30" in last


def test_run_local_says_every_minute_that_it_still_waits(tmp_path):
    import io

    from dpc_elt.dev import run_local

    uri = str(tmp_path / "yyyymm=202504" / "_manifest.json")
    out = io.StringIO()
    with run_local.waiting_lines(uri, 5, out, every_seconds=0.05):
        time.sleep(0.3)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and all(line.startswith(f"  still waiting for {uri}: ") for line in lines)
    assert lines[0].endswith("of 5 min")


def test_copy_raw_forgets_the_loaded_manifest_before_it_replaces_the_month(tmp_path, monkeypatch):
    """Until the run ends well again, a repeated manifest event must not count the month as loaded."""
    import dataclasses
    from datetime import UTC, datetime
    from types import SimpleNamespace

    import fsspec

    from dpc_elt.core import run_marker, settings
    from dpc_elt.core.manifest import ValidatedManifest
    from dpc_elt.orchestration.steps import CopyRawOperator

    cfg = dataclasses.replace(settings.get_settings(), processed_root=str(tmp_path / "processed"))
    monkeypatch.setattr(settings, "get_settings", lambda: cfg)
    fs, path = fsspec.filesystem("file"), run_marker.loaded_manifest_uri(cfg, "202504")
    loaded = run_marker.LoadedManifest("202504", "a" * 64, "dpc_elt", "manual__1", datetime.now(UTC))
    run_marker.write_loaded_manifest(fs, path, loaded)
    other = run_marker.loaded_manifest_uri(cfg, "202503")
    run_marker.write_loaded_manifest(fs, other, dataclasses.replace(loaded, yyyymm="202503"))
    seen = []

    class Backend:
        def filesystem(self, uri):
            return fsspec.core.url_to_fs(uri)

        def load_month(self, yyyymm, manifest):
            seen.append((yyyymm, run_marker.read_loaded_manifest(fs, path)))
            return {"y1": 1}

    checked = {"yyyymm": "202504", "manifest": ValidatedManifest("202504", "x", (), manifest_sha256="b" * 64).to_dict()}
    ti = SimpleNamespace(xcom_pull=lambda task_ids: checked)
    assert CopyRawOperator(task_id="copy_raw").start({"ti": ti}, Backend()) == {"y1": 1}
    assert seen == [("202504", None)]
    assert run_marker.read_loaded_manifest(fs, other) is not None  # other months keep theirs
