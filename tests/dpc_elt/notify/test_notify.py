"""Notifications: one message for every channel, never patient data, never dropped."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from dpc_elt.core import settings
from dpc_elt.core.errors import RawFileError
from dpc_elt.notify import Message, deliver, describe_failure

PATIENT_ID = "P123456789"


def success_message() -> Message:
    return Message(
        status="SUCCESS",
        dag_id="dpc_elt",
        run_id="manual__2025-05-08",
        yyyymm="202504",
        environment="test",
        counts={"raw.y1": 2210, "mart.fact_case_summary": 120},
        durations={"copy_raw": 3.2, "build_stage": 10.0},
        exports=["data/processed/yyyymm=202504"],
    )


def test_success_text_has_counts_durations_and_exports():
    text = success_message().text()
    assert "202504 SUCCESS" in text
    assert "raw.y1: 2,210" in text and "mart.fact_case_summary: 120" in text
    assert "copy_raw: 3.2 s" in text and "task time 13.2 s" in text
    assert "data/processed/yyyymm=202504" in text


def test_failure_quotes_only_safe_errors():
    safe = describe_failure("copy_raw", RawFileError("EFn_131000123_2504.txt", "wrong number of fields", line=3), "u")
    assert safe["detail"] == "EFn_131000123_2504.txt:3: wrong number of fields"
    # Any other exception may carry values (a dbt error can quote a row): its text is never sent.
    unsafe = describe_failure("build_mart.fct_cases_run", KeyError(PATIENT_ID), "u")
    assert unsafe == {"task_id": "build_mart.fct_cases_run", "error_type": "KeyError", "detail": "", "log_url": "u"}
    message = Message("FAILURE", "dpc_elt", "r", "202504", "test", failures=[safe, unsafe])
    assert PATIENT_ID not in message.text() and PATIENT_ID not in json.dumps(message.to_dict())
    assert "failed task `build_mart.fct_cases_run`: KeyError" in message.text()


def test_without_slack_the_message_goes_to_the_outbox(tmp_path):
    cfg = settings.Settings(**{**settings.get_settings().__dict__, "outbox_path": str(tmp_path / "o.jsonl")})
    where = deliver(success_message(), context={}, cfg=cfg)
    assert where == str(tmp_path / "o.jsonl")
    (record,) = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert record["status"] == "SUCCESS" and record["counts"]["raw.y1"] == 2210
    assert record["text"] == success_message().text()


def test_with_a_slack_connection_the_provider_notifier_sends_it(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_DPC_SLACK", '{"conn_type": "slackwebhook", "password": "T0/B0/not-a-secret"}')
    cfg = settings.Settings(
        **{**settings.get_settings().__dict__, "slack_conn_id": "dpc_slack", "outbox_path": str(tmp_path / "o.jsonl")}
    )
    with mock.patch("airflow.providers.slack.hooks.slack_webhook.SlackWebhookHook.send") as send:
        where = deliver(success_message(), context={}, cfg=cfg)
    assert where == "slack:dpc_slack"
    send.assert_called_once()
    assert send.call_args.kwargs["text"] == success_message().text()
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("status", ["SUCCESS", "FAILURE"])
def test_subject_names_status_month_and_environment(status):
    message = Message(status, "dpc_elt", "r", "202504", "prod")
    assert message.subject.endswith(f"dpc_elt 202504 {status} [prod]")


def test_success_text_links_the_quality_report():
    message = success_message()
    assert "Quality report" not in message.text()  # no report, no line
    message.report = "data/processed/yyyymm=202504/_quality_report.html"
    assert "*Quality report*: data/processed/yyyymm=202504/_quality_report.html" in message.text()
    assert message.to_dict()["report"] == message.report
    message.report = "s3://bucket/processed/yyyymm=202504/_quality_report.html"
    assert message.text().splitlines()[-1] == f"*Quality report*: {message.report}"  # not a Slack link


def test_an_http_report_becomes_a_slack_link_with_slack_escaping():
    from dpc_elt.notify.message import slack_link

    assert slack_link("https://h.example/r?a=1&b=<2>") == "<https://h.example/r?a=1&amp;b=&lt;2&gt;|quality report>"
    assert slack_link("/data/x&y.html") == "/data/x&amp;y.html"
