"""The trigger form's month: JSON Schema in the form, the same rule in code, the scheduled default, and the month
of a run that a manifest event started."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

import jsonschema
import pytest

from dpc_elt.core import settings
from dpc_elt.core.errors import ParameterError
from dpc_elt.core.params import (
    MANIFEST_ASSET_NAME,
    MANIFEST_KEY_RULE,
    facility_of_params,
    manifest_records,
    month_of_context,
    month_of_manifest_key,
    param_schemas,
    s3_object,
    target_month,
    validate_facility_cd,
    validate_yyyymm,
)

BAD_MONTHS = [
    "202513",
    "202500",
    "2025-04",
    "20254",
    "2025041",
    "202504'; DROP TABLE raw.y1; --",
    " 202504",
    "abcdef",
    202504,
]


@pytest.mark.parametrize("value", BAD_MONTHS)
def test_form_schema_rejects_bad_months(value):
    schema = {k: v for k, v in param_schemas()["yyyymm"].items() if k not in {"default", "title", "description"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(value, schema)


@pytest.mark.parametrize("value", BAD_MONTHS)
def test_code_rejects_the_same_months_before_any_sql(value):
    with pytest.raises(ParameterError):
        validate_yyyymm(value)


@pytest.mark.parametrize("value", ["190001", "202504", "202412", "209912"])
def test_real_months_pass_both(value):
    schema = {k: v for k, v in param_schemas()["yyyymm"].items() if k not in {"default", "title", "description"}}
    jsonschema.validate(value, schema)
    assert validate_yyyymm(value) == value


BAD_FACILITIES = ["13100012", "1310001234", "13100012a", "131000123\n", "131000123' or 1=1", " 131000123", 131000123]


def facility_schema() -> dict:
    return {k: v for k, v in param_schemas()["facility_cd"].items() if k not in {"default", "title", "description"}}


@pytest.mark.parametrize("value", BAD_FACILITIES)
def test_form_and_code_reject_the_same_facility_codes(value):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(value, facility_schema())
    with pytest.raises(ParameterError, match="nine digits"):
        validate_facility_cd(value)
    with pytest.raises(ParameterError):
        facility_of_params({"facility_cd": value})


def test_a_facility_code_passes_both_and_empty_means_the_whole_month():
    jsonschema.validate("131000123", facility_schema())
    jsonschema.validate(None, facility_schema())
    assert param_schemas()["facility_cd"]["default"] is None
    assert facility_of_params({"facility_cd": "131000123"}) == "131000123"
    assert facility_of_params({"facility_cd": ""}) is None
    assert facility_of_params({}) is None


def test_given_month_wins_over_logical_date():
    assert target_month({"yyyymm": "202411"}, datetime(2025, 6, 1, tzinfo=UTC), None) == "202411"


@pytest.mark.parametrize(
    ("logical_date", "expected"),
    [
        # 2025-05-01 03:00 JST is 2025-04-30 18:00 UTC: the JST month (May) decides → April.
        (datetime(2025, 4, 30, 18, 0, tzinfo=UTC), "202504"),
        (datetime(2025, 5, 15, 0, 0, tzinfo=UTC), "202504"),
        # January runs load December of the year before.
        (datetime(2025, 1, 10, 18, 0, tzinfo=UTC), "202412"),
    ],
)
def test_default_is_the_month_before_the_logical_date_in_tokyo(logical_date, expected):
    assert target_month({"yyyymm": None}, logical_date, None) == expected


def test_manual_run_without_logical_date_uses_run_after():
    assert target_month({}, None, datetime(2025, 3, 2, tzinfo=UTC)) == "202502"


def test_no_month_and_no_date_is_an_error():
    with pytest.raises(ParameterError):
        target_month({}, None, None)


# --- a run started by a manifest event (S3 event notification through SQS) -----------------------

RAW_ROOT = "s3://dpc-bucket/raw"


def s3_message(*keys: str, bucket: str = "dpc-bucket") -> dict:
    """An SQS message as the amazon provider's trigger returns it; the body is S3's notification, whose
    keys are URL-encoded as S3 sends them (``=`` as ``%3D``)."""
    from urllib.parse import quote_plus

    records = [
        {"eventSource": "aws:s3", "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}}}
        for key in keys
    ]
    return {"MessageId": "m", "ReceiptHandle": "r", "Body": json.dumps({"Records": records})}


def event_extra(*messages: dict) -> dict:
    """What the triggerer stores as the Asset event's extra for an AssetWatcher's TriggerEvent."""
    return {"from_trigger": True, "payload": {"status": "success", "message_batch": list(messages)}}


@dataclass(frozen=True)
class Key:
    name: str


@dataclass
class Event:
    extra: dict
    timestamp: datetime


def context_with(events: dict, yyyymm=None) -> dict:
    return {
        "params": {"yyyymm": yyyymm, "manifest_wait_minutes": 360},
        "dag_run": SimpleNamespace(run_type="asset_triggered", run_after=datetime(2025, 5, 8, tzinfo=UTC)),
        "logical_date": None,
        "triggering_asset_events": events,
    }


@pytest.fixture
def s3_raw_root(monkeypatch):
    monkeypatch.setenv("DPC_RAW_ROOT", RAW_ROOT)
    settings.get_settings.cache_clear()
    yield RAW_ROOT
    settings.get_settings.cache_clear()


@pytest.mark.parametrize(
    ("key", "month"),
    [("raw/yyyymm=202504/_manifest.json", "202504"), ("raw/yyyymm=199912/_manifest.json", "199912")],
)
def test_a_month_manifest_key_gives_its_month(key, month):
    assert month_of_manifest_key("dpc-bucket", key, raw_root=RAW_ROOT) == month


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        ("dpc-bucket", "raw/yyyymm=202513/_manifest.json"),  # not a real month
        ("dpc-bucket", "raw/yyyymm=2025-04/_manifest.json"),
        ("dpc-bucket", "raw/yyyymm=202504/sub/_manifest.json"),  # a folder below the month
        ("dpc-bucket", "raw/202504/_manifest.json"),
        ("dpc-bucket", "staging/yyyymm=202504/_manifest.json"),  # outside the raw prefix
        ("dpc-bucket", "raw/yyyymm=202504/FF1_131000123_2504.txt"),
        ("other-bucket", "raw/yyyymm=202504/_manifest.json"),
    ],
)
def test_any_other_key_is_refused_naming_the_rule_and_the_object(bucket, key):
    with pytest.raises(ParameterError) as refused:
        month_of_manifest_key(bucket, key, raw_root=RAW_ROOT)
    assert MANIFEST_KEY_RULE in str(refused.value) and f"s3://{bucket}/{key}" in str(refused.value)


def test_a_raw_root_at_the_bucket_root_has_no_prefix():
    assert month_of_manifest_key("b", "yyyymm=202504/_manifest.json", raw_root="s3://b") == "202504"
    with pytest.raises(ParameterError):
        month_of_manifest_key("b", "raw/yyyymm=202504/_manifest.json", raw_root="s3://b")


def test_records_are_read_from_every_message_url_decoded_once_each_test_events_ignored():
    test_event = {"MessageId": "t", "Body": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})}
    extras = [
        event_extra(s3_message("raw/yyyymm=202504/_manifest.json"), test_event),
        event_extra(s3_message("raw/yyyymm=202503/_manifest.json", "raw/yyyymm=202504/_manifest.json")),
        {"from_trigger": True, "payload": "not a batch"},
    ]
    records = manifest_records(extras)
    assert [s3_object(r) for r in records] == [
        ("dpc-bucket", "raw/yyyymm=202504/_manifest.json"),
        ("dpc-bucket", "raw/yyyymm=202503/_manifest.json"),
    ]
    assert records[0]["s3"]["object"]["key"] == "raw/yyyymm%3D202504/_manifest.json"  # as S3 sent it


def test_an_event_triggered_run_loads_the_month_of_its_oldest_event(s3_raw_root):
    newer = Event(event_extra(s3_message("raw/yyyymm=202505/_manifest.json")), datetime(2025, 6, 2, tzinfo=UTC))
    older = Event(event_extra(s3_message("raw/yyyymm=202504/_manifest.json")), datetime(2025, 6, 1, tzinfo=UTC))
    requeued_via_alias = Event(
        event_extra(s3_message("raw/yyyymm=202401/_manifest.json")), datetime(2020, 1, 1, tzinfo=UTC)
    )
    events = {Key(MANIFEST_ASSET_NAME): [newer, older], Key("dpc_elt_requeued_manifests"): [requeued_via_alias]}
    assert month_of_context(context_with(events)) == "202504"
    # the trigger form still wins, and a run without events keeps the logical-date rule
    assert month_of_context(context_with(events, yyyymm="202412")) == "202412"
    assert month_of_context(context_with({})) == "202504"  # the month before run_after 2025-05-08


def test_an_event_triggered_run_with_a_bad_key_fails_naming_the_rule(s3_raw_root):
    events = {
        Key(MANIFEST_ASSET_NAME): [
            Event(event_extra(s3_message("raw/yyyymm=202513/_manifest.json")), datetime.now(UTC))
        ]
    }
    with pytest.raises(ParameterError, match=re.escape(MANIFEST_KEY_RULE)):
        month_of_context(context_with(events))
    empty = {
        Key(MANIFEST_ASSET_NAME): [Event({"from_trigger": True, "payload": {"message_batch": []}}, datetime.now(UTC))]
    }
    with pytest.raises(ParameterError, match="holds no S3 record"):
        month_of_context(context_with(empty))
