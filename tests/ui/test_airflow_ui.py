"""The Airflow UI as a user meets it, in headless Chromium (Playwright): sign in, open dpc_elt, see
its docs and the task groups in the graph, open the trigger form, have an invalid month refused and
a valid one start a run. Screenshots land in test-artifacts/ui/ (CI keeps them as artifacts).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import ARTIFACTS

pytestmark = pytest.mark.ui

DAG_ID = "dpc_elt"
TASK_GROUPS = ("validate_manifest", "build_stage", "build_mart")


def _shot(page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True, animations="disabled")


def _sign_in(page, ui) -> None:
    page.goto(f"{ui.api_url}/")
    expect(page.get_by_text("Sign into Airflow")).to_be_visible()
    _shot(page, "01-sign-in")
    page.get_by_label("Username").fill(ui.username)
    page.get_by_label("Password").fill(ui.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/$"))


def _runs(api) -> list[dict]:
    return api.request("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]


def test_a_user_finds_the_dag_its_groups_and_the_month_form(page, airflow_ui):
    _sign_in(page, airflow_ui)
    page.goto(f"{airflow_ui.api_url}/dags/{DAG_ID}")
    expect(page.get_by_role("heading", name=DAG_ID).first).to_be_visible()

    # The DAG's doc_md opens from the header and tells the user how to re-run and triage.
    page.get_by_role("button", name="Dag Docs").click()
    docs = page.get_by_role("dialog")
    expect(docs).to_be_visible()
    expect(docs).to_contain_text("Re-run / backfill")
    expect(docs).to_contain_text("Triage")
    _shot(page, "02-dag-docs")
    page.keyboard.press("Escape")

    # The graph shows one node per ASL state; the three Cosmos/sensor states are task groups.
    page.get_by_role("button", name=re.compile(r"Show Graph")).click()
    page.get_by_role("button", name="Expand all task groups").click()
    page.get_by_role("button", name="Collapse Details Panel").click()  # the graph gets the whole width
    graph = page.locator(".react-flow")
    for group in TASK_GROUPS:
        expect(graph.get_by_text(group, exact=True)).to_be_visible()
    expect(graph.get_by_text("Task Group").first).to_be_visible()
    for task in ("copy_raw", "compute_readmit", "dbt_tests", "export_parquet", "notify_success"):
        expect(graph.get_by_text(task, exact=True)).to_be_visible()
    _shot(page, "03-graph")


def test_the_trigger_form_refuses_a_bad_month_and_starts_a_good_one(page, airflow_ui, api):
    _sign_in(page, airflow_ui)
    page.goto(f"{airflow_ui.api_url}/dags/{DAG_ID}")
    before = len(_runs(api))

    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog")
    expect(form.get_by_text("Target month (yyyymm)")).to_be_visible()
    expect(form.get_by_text(re.compile(r"The DPC month to load, e\.g\. 202504"))).to_be_visible()
    expect(form.get_by_text("Reload one facility only (facility_cd)")).to_be_visible()
    _shot(page, "04-trigger-form")

    month = form.locator("#element_yyyymm")  # Airflow names each param field element_<param>
    month.fill("202513")
    form.get_by_role("button", name="Trigger").click()
    expect(form.get_by_text(re.compile(r"Failed validating 'pattern'"))).to_be_visible()
    _shot(page, "05-invalid-month-refused")
    assert len(_runs(api)) == before, "an invalid month created a run"
    # The "Failed to Trigger Dag" toast covers the form's lower corner until it times out; it waits
    # while the pointer rests on it, as a user's would after clicking Trigger.
    page.mouse.move(5, 5)
    expect(page.locator('[data-scope="toast"][data-part="root"]')).to_have_count(0, timeout=30_000)

    month.fill("202504")
    form.get_by_role("button", name="Trigger").click()
    expect(form).to_be_hidden()
    runs = _runs(api)
    assert len(runs) == before + 1
    # The form sends every field: the month, no facility (the whole month), the default wait.
    (run,) = [r for r in runs if r["conf"].get("yyyymm") == "202504"]
    assert run["conf"] == {"yyyymm": "202504", "facility_cd": None, "manifest_wait_minutes": 360}
    assert run["run_type"] == "manual" and run["state"] == "queued"
    page.goto(f"{airflow_ui.api_url}/dags/{DAG_ID}/runs/{run['dag_run_id']}")
    expect(page.get_by_text(run["dag_run_id"]).first).to_be_visible()
    _shot(page, "06-run-queued")
