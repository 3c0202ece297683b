"""The trigger form of ``dpc_elt`` and the one rule that turns a run into its target month.

A run processes one month, ``yyyymm``. Given in the trigger form (or ``--conf``), it is used as is;
left empty (every scheduled run), it is the calendar month *before* the run's logical date in
Asia/Tokyo — hospitals deliver month M in the first days of month M+1, and the daily 03:00 run keeps
waiting for and (re)loading it, idempotently.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dpc_elt.core.errors import ParameterError

TIMEZONE = "Asia/Tokyo"
JST = ZoneInfo(TIMEZONE)
# A real month, not only six digits: 1900-01 … 2099-12.
YYYYMM_PATTERN = r"^(19|20)[0-9]{2}(0[1-9]|1[0-2])$"
_YYYYMM = re.compile(YYYYMM_PATTERN)

MANIFEST_WAIT_DEFAULT_MINUTES = 360


def param_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of the trigger form, as keyword arguments for ``airflow.sdk.Param``."""
    return {
        "yyyymm": {
            "default": None,
            "type": ["null", "string"],
            # Python's re lets "$" match before a final newline: the lengths close that gap.
            "minLength": 6,
            "maxLength": 6,
            "pattern": YYYYMM_PATTERN,
            "title": "Target month (yyyymm)",
            "description": (
                "The DPC month to load, e.g. 202504. Leave empty to take the month before the run's "
                "logical date (Asia/Tokyo), which is what the daily schedule does."
            ),
        },
        "manifest_wait_minutes": {
            "default": MANIFEST_WAIT_DEFAULT_MINUTES,
            "type": "integer",
            "minimum": 0,
            "maximum": 1440,
            "title": "Wait for _manifest.json (minutes)",
            "description": (
                "How long validate_manifest waits for the month's _manifest.json. A scheduled run whose "
                "manifest has not arrived by then ends skipped; a manual run fails."
            ),
        },
    }


def validate_yyyymm(value: object) -> str:
    """The month as a string, or ParameterError before any SQL runs."""
    if not isinstance(value, str) or not _YYYYMM.fullmatch(value):
        raise ParameterError("yyyymm must be a real month written as six digits yyyymm (e.g. 202504)")
    return value


def previous_month(moment: datetime) -> str:
    local = moment.astimezone(JST)
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}{month:02d}"


def target_month(params: dict[str, Any], logical_date: datetime | None, run_after: datetime | None) -> str:
    """The run's month: the ``yyyymm`` Param if given, else the month before the logical date."""
    given = params.get("yyyymm")
    if given not in (None, ""):
        return validate_yyyymm(given)
    moment = logical_date or run_after
    if moment is None:
        raise ParameterError("yyyymm is empty and the run has no logical date to derive it from")
    return previous_month(moment)


def month_of_context(context: Any) -> str:
    """``target_month`` for a task's Airflow context."""
    dag_run = context["dag_run"]
    return target_month(context["params"], context.get("logical_date"), getattr(dag_run, "run_after", None))
