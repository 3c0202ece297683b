"""infra/terraform: every file parses, and the operations module holds every alarm, threshold and
widget of the seed — the numbers are read from the seed text, not restated here. checkov scans the
module in its own environment when uv can provide it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from dpc_elt.core import copy_errors
from dpc_elt.ops import thresholds
from tests.operations.support import SEED_COPY, SEED_SOURCE, TERRAFORM, seed_number

MODULE = TERRAFORM / "modules" / "operations"
EXAMPLE = TERRAFORM / "examples" / "operations"
TF_FILES = sorted(TERRAFORM.rglob("*.tf"))
CHECKOV = "checkov==3.3.30"


def _clean(node):
    """python-hcl2 keeps the quotes of strings and keys and adds metadata: drop both."""
    if isinstance(node, dict):
        return {_unquote(k): _clean(v) for k, v in node.items() if k not in ("__comments__", "__is_block__")}
    if isinstance(node, list):
        return [_clean(item) for item in node]
    return _unquote(node) if isinstance(node, str) else node


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


@cache
def parsed(path: Path) -> dict:
    import hcl2

    with open(path, encoding="utf-8") as handle:
        return _clean(hcl2.load(handle))


def module_blocks(kind: str) -> dict[str, dict]:
    """``resource`` / ``data`` blocks of the module as {"type.name": body}; ``variable`` as {name: body}."""
    found: dict[str, dict] = {}
    for path in sorted(MODULE.glob("*.tf")):
        for block in parsed(path).get(kind, []):
            for first, body in block.items():
                if kind == "variable":
                    found[first] = body
                else:
                    for name, attrs in body.items():
                        found[f"{first}.{name}"] = attrs
    return found


def module_locals() -> dict:
    merged: dict = {}
    for path in sorted(MODULE.glob("*.tf")):
        for block in parsed(path).get("locals", []):
            merged |= block
    return merged


THRESHOLDS = module_locals()["thresholds"]
VARIABLES = module_blocks("variable")
RESOURCES = module_blocks("resource")


def resolve(expr):
    """A literal, or the value of ``${local.thresholds.x}`` / ``${var.x}`` (its default)."""
    if isinstance(expr, str):
        if match := re.fullmatch(r"\$\{local\.thresholds\.(\w+)\}", expr):
            return THRESHOLDS[match.group(1)]
        if match := re.fullmatch(r"\$\{var\.(\w+)\}", expr):
            return VARIABLES[match.group(1)]["default"]
    return expr


def alarm(name: str) -> dict:
    (found,) = [
        a for key, a in RESOURCES.items() if key.startswith("aws_cloudwatch_metric_alarm.") and a["alarm_name"] == name
    ]
    return found


def seed_alerts(text: str) -> dict[str, str]:
    """The alert table of the seed: alarm name -> its condition cell."""
    rows = re.findall(r"^\| `(Alert-[A-Za-z-]+)` \| (.+?) \| (.+?) \|$", text, flags=re.MULTILINE)
    return {name: condition for name, condition, _ in rows}


def seed_routes(text: str) -> dict[str, str]:
    rows = re.findall(r"^\| `(Alert-[A-Za-z-]+)` \| (.+?) \| (.+?) \|$", text, flags=re.MULTILINE)
    return {name: where for name, _, where in rows}


def seed_dashboard(text: str) -> dict:
    (body,) = re.findall(r"```json\n(.+?)\n```", text, flags=re.DOTALL)
    return json.loads(body)


def render_dashboard(values: dict) -> dict:
    template = (MODULE / "dashboard.json.tftpl").read_text(encoding="utf-8")
    assert "%{" not in template
    used = set(re.findall(r"\$\{(\w+)\}", template))
    call = RESOURCES["aws_cloudwatch_dashboard.operations"]["dashboard_body"]
    assert used <= set(re.findall(r"\b(\w+)\s*=", call)), "every template value is passed by dashboard.tf"
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda m: str(values[m.group(1)]), template))


# --- parsing ----------------------------------------------------------------------------------------


def test_seed_copy_is_verbatim():
    if not SEED_SOURCE.exists():
        pytest.skip("../shared/seeds is not checked out here")
    assert SEED_COPY.read_bytes() == SEED_SOURCE.read_bytes()


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_file_parses(path):
    assert parsed(path), f"{path} is empty"


def test_module_and_example_exist():
    assert {p.name for p in MODULE.glob("*.tf")} >= {"variables.tf", "versions.tf", "outputs.tf", "alarms.tf"}
    (module,) = [block for block in parsed(EXAMPLE / "main.tf")["module"] if "operations" in block]
    assert module["operations"]["source"] == "../../modules/operations"
    required = {name for name, body in VARIABLES.items() if "default" not in body}
    assert required <= set(module["operations"]), f"the example leaves out {required - set(module['operations'])}"
    assert {"account_id", "region", "environment"} <= set(VARIABLES)


# --- the seed's dashboard -----------------------------------------------------------------------------


def test_dashboard_has_the_seeds_five_widgets(seed_text):
    seed = seed_dashboard(seed_text)["widgets"]
    mine = render_dashboard(
        {
            "region": "ap-northeast-1",
            "environment": "prod",
            "workgroup_name": "dpc-learning",
            "namespace_name": "dpc-learning",
            "metrics_namespace": "AWS/Redshift-Serverless",
            "rpu_metric": "ComputeCapacity",
            "succeeded_metric": "QueriesSucceeded",
            "failed_metric": "QueriesFailed",
            "storage_metric": "DataStorage",
            "log_group_name": "/aws/redshift-serverless/workgroup/dpc-learning",
            "base_capacity": 8,
            "max_capacity": 32,
            "rpu_spike": 28,
            "elt_delay_minutes": 90,
        }
    )["widgets"]
    assert len(mine) == len(seed) == 5
    for expected, actual in zip(seed, mine, strict=True):
        for key in ("type", "x", "y", "width", "height"):
            assert actual[key] == expected[key], (expected["properties"]["title"], key)
        props, want = actual["properties"], expected["properties"]
        assert props["title"] == want["title"]
        for key in ("period", "stat", "query"):
            assert props.get(key) == want.get(key), (want["title"], key)
        for line in want.get("metrics", []):
            namespace, name, dimension, value = line
            if namespace == "Custom/DPC":
                assert line in props["metrics"]
                continue
            labels = [m[-1].get("label") for m in props["metrics"] if isinstance(m[-1], dict)]
            labels += [a["label"].split(" ")[0] for a in props.get("annotations", {}).get("horizontal", [])]
            assert name in labels, f"{want['title']}: the seed's {name} is not shown"
            assert all(m[2] == dimension and m[3] == value for m in props["metrics"]), want["title"]


def test_redshift_metric_mapping_covers_every_seed_metric(seed_text):
    mapping = VARIABLES["redshift_metrics"]["default"]
    seed_names = {line[1] for w in seed_dashboard(seed_text)["widgets"] for line in w["properties"].get("metrics", [])}
    seed_names -= {"ELTExecutionDelay"}
    # each seed metric has a mapped name; the variable's comments say which (checked by a human)
    assert {"RPUConsumption", "RPUCapacity", "SuccessfulQueryCount", "FailedQueryCount", "UsedStorage"} == seed_names
    assert set(mapping) == {
        "namespace",
        "rpu_consumption",
        "compute_seconds",
        "queries_succeeded",
        "queries_failed",
        "used_storage",
    }


# --- the seed's alarms ---------------------------------------------------------------------------------


def test_every_seed_alarm_exists(seed_text):
    names = {a["alarm_name"] for key, a in RESOURCES.items() if key.startswith("aws_cloudwatch_metric_alarm.")}
    assert set(seed_alerts(seed_text)) == {
        "Alert-ELT-Delay",
        "Alert-COPY-Error",
        "Alert-Storage-High",
        "Alert-RPU-Spike",
        "Alert-Query-Failure",
    }
    assert set(seed_alerts(seed_text)) <= names


def test_elt_delay_alarm(seed_text):
    condition = seed_alerts(seed_text)["Alert-ELT-Delay"]
    a = alarm("Alert-ELT-Delay")
    assert (
        resolve(a["threshold"])
        == seed_number(condition, r"ELTExecutionDelay > (\d+)")
        == thresholds.ELT_DELAY_ALARM_MINUTES
    )
    points = seed_number(condition, r"(\d+) データポイント連続")
    assert resolve(a["evaluation_periods"]) == resolve(a["datapoints_to_alarm"]) == points
    assert a["comparison_operator"] == "GreaterThanThreshold" and a["statistic"] == "Maximum"
    assert resolve(a["period"]) == 300  # dpc_metrics publishes every 5 minutes
    assert (a["namespace"], a["metric_name"]) == ("${local.custom_namespace}", thresholds.ELT_DELAY_METRIC)
    assert module_locals()["custom_namespace"] == thresholds.METRIC_NAMESPACE
    assert a["dimensions"] == {thresholds.ENVIRONMENT_DIMENSION: "${var.environment}"}
    assert a["treat_missing_data"] == "breaching"


def test_copy_error_alarm_and_its_metric_filter(seed_text):
    a = alarm("Alert-COPY-Error")
    assert resolve(a["threshold"]) == seed_number(
        seed_alerts(seed_text)["Alert-COPY-Error"], r"CopyErrorCount >= (\d+)"
    )
    assert a["comparison_operator"] == "GreaterThanOrEqualToThreshold" and a["statistic"] == "Sum"
    metric_filter = RESOURCES["aws_cloudwatch_log_metric_filter.copy_errors"]
    (transformation,) = metric_filter["metric_transformation"]
    assert (transformation["name"], transformation["namespace"]) == (
        copy_errors.COPY_ERROR_METRIC,
        "${local.custom_namespace}",
    )
    term = metric_filter["pattern"].strip('\\"')
    assert term == copy_errors.COPY_ERROR_EVENT and copy_errors.copy_error_line("x.txt", 1).startswith(term)
    assert "copy_errors" in a["metric_name"]


def test_storage_alarm(seed_text):
    a = alarm("Alert-Storage-High")
    assert resolve(a["threshold"]) == seed_number(seed_alerts(seed_text)["Alert-Storage-High"], r"が (\d+)% 以上")
    assert a["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    expression = next(q for q in a["metric_query"] if q.get("return_data"))["expression"]
    assert "var.storage_budget_mb" in expression and expression.startswith("100 *")


def test_rpu_spike_alarm(seed_text):
    condition = seed_alerts(seed_text)["Alert-RPU-Spike"]
    a = alarm("Alert-RPU-Spike")
    assert resolve(a["threshold"]) == seed_number(condition, r"RPUConsumption > (\d+)")
    minutes = seed_number(condition, r"が (\d+) 分継続")
    assert resolve(a["period"]) * resolve(a["evaluation_periods"]) == minutes * 60
    assert resolve(a["datapoints_to_alarm"]) == resolve(a["evaluation_periods"])  # every minute, in a row
    assert a["comparison_operator"] == "GreaterThanThreshold"


def test_query_failure_alarms(seed_text):
    a = alarm("Alert-Query-Failure")
    times = seed_number(seed_alerts(seed_text)["Alert-Query-Failure"], r"連続 (\d+) 回増加")
    assert resolve(a["evaluation_periods"]) == resolve(a["datapoints_to_alarm"]) == times
    assert (a["comparison_operator"], resolve(a["threshold"]), a["statistic"]) == ("GreaterThanThreshold", 0, "Sum")
    rate = alarm("Alert-Query-Failure-Rate")
    assert resolve(rate["threshold"]) == seed_number(seed_text, r"直近 \d+ 時間 \| > (\d+)%")
    hours = seed_number(seed_text, r"直近 (\d+) 時間")
    periods = {q["metric"][0]["period"] for q in rate["metric_query"] if "metric" in q}
    assert (
        periods == {"${3600 * local.thresholds.query_failure_rate_hours}"}
        and THRESHOLDS["query_failure_rate_hours"] == hours
    )


def test_paused_share_alarm(seed_text):
    a = alarm("Alert-Paused-Share-Low")
    paused = seed_number(seed_text, r"`PAUSED` である時間 \| < (\d+)%")
    assert THRESHOLDS["paused_share_min_pct"] == paused
    assert a["threshold"] == "${100 - local.thresholds.paused_share_min_pct}"


def test_every_alarm_notifies_the_topic():
    for key, a in RESOURCES.items():
        if key.startswith("aws_cloudwatch_metric_alarm."):
            assert a["alarm_actions"] == "${local.alarm_actions}", key
    assert module_locals()["alarm_actions"] == ["${aws_sns_topic.alerts.arn}"]


# --- SNS and routing -----------------------------------------------------------------------------------


def test_topic_is_dpc_alerts_and_routes_follow_the_seed(seed_text):
    assert re.search(r"arn:aws:sns:ap-northeast-1:<account>:(dpc-alerts)", seed_text)
    assert VARIABLES["alert_topic_name"]["default"] == "dpc-alerts"
    assert RESOURCES["aws_sns_topic.alerts"]["name"] == "${var.alert_topic_name}"
    routes = seed_routes(seed_text)
    assert all("Slack" in where for where in routes.values())  # Chatbot gets the whole topic
    expected = {
        "pagerduty": sorted(n for n, w in routes.items() if "PagerDuty" in w),
        "opsgenie": sorted(n for n, w in routes.items() if "OpsGenie" in w),
        "email": sorted(n for n, w in routes.items() if "メール" in w),
    }
    assert {k: sorted(v) for k, v in module_locals()["routes"].items()} == expected
    for name in ("email", "pagerduty", "opsgenie"):
        subscription = RESOURCES[f"aws_sns_topic_subscription.{name}"]
        policy = re.sub(r"\s", "", subscription["filter_policy"])
        assert policy == f"${{jsonencode({{AlarmName=local.routes.{name}}})}}"
        assert subscription["filter_policy_scope"] == "MessageBody"
    chatbot = RESOURCES["aws_chatbot_slack_channel_configuration.alerts"]
    assert chatbot["sns_topic_arns"] == ["${aws_sns_topic.alerts.arn}"]


# --- Redshift Serverless capacity ----------------------------------------------------------------------


def test_capacity_limits_and_query_limit(seed_text):
    workgroup = RESOURCES["aws_redshiftserverless_workgroup.this"]
    assert resolve(workgroup["base_capacity"]) == seed_number(seed_text, r"\*\*ベース RPU\*\*: (\d+) RPU")
    assert resolve(workgroup["max_capacity"]) == seed_number(seed_text, r"\*\*最大 RPU\*\*: (\d+) RPU")
    params = {p["parameter_key"]: p["parameter_value"] for p in workgroup["config_parameter"]}
    assert params["max_query_execution_time"] == "${tostring(var.max_query_execution_time_seconds)}"
    assert VARIABLES["max_query_execution_time_seconds"]["default"] == seed_number(
        seed_text, r"`execution_time > (\d+)` 秒"
    )
    assert workgroup["publicly_accessible"] is False


def test_usage_limit_and_its_80_percent_notice(seed_text):
    limit = RESOURCES["aws_redshiftserverless_usage_limit.monthly_compute"]
    assert (limit["period"], limit["usage_type"]) == ("monthly", "serverless-compute")
    assert limit["amount"] == "${var.monthly_rpu_hours}"
    budget = RESOURCES["aws_budgets_budget.redshift_monthly"]
    (notification,) = budget["notification"]
    assert resolve(notification["threshold"]) == seed_number(seed_text, r"閾値 (\d+)% 到達で通知")
    assert notification["threshold_type"] == "PERCENTAGE"
    assert notification["subscriber_sns_topic_arns"] == ["${aws_sns_topic.alerts.arn}"]
    assert "var.monthly_rpu_hours" in budget["limit_amount"]


# --- checkov -------------------------------------------------------------------------------------------


def test_checkov_finds_nothing_unexplained(tmp_path):
    """checkov cannot live in the project venv (cachetools pins clash with Airflow 3.3): run it with
    uv in its own environment. Skipped only when uv cannot provide it (offline, no uv)."""
    uv = shutil.which("uvx") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    command = [uv] if uv.endswith("uvx") else [uv, "tool", "run"]
    command += ["--python", sys.executable, "--from", CHECKOV, "checkov"]
    command += ["-d", str(TERRAFORM), "--framework", "terraform", "--skip-download", "--quiet", "--compact"]
    command += ["--output", "json"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.skip("checkov could not be installed in time")
    if not done.stdout.strip().startswith(("{", "[")):
        pytest.skip(f"checkov is not available here: {done.stderr.strip().splitlines()[-1:]}")
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert not failed, [(c["check_id"], c["resource"]) for c in failed]
    skipped = [c for r in reports for c in r.get("results", {}).get("skipped_checks", [])]
    assert all(c.get("suppress_comment") for c in skipped), "every skip carries its reason"
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 20  # it really scanned the module
