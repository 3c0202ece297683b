"""The trigger form's month: JSON Schema in the form, the same rule in code, and the scheduled default."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema
import pytest

from dpc_elt.core.errors import ParameterError
from dpc_elt.core.params import param_schemas, target_month, validate_yyyymm

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
