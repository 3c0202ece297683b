"""The trigger form of ``dpc_elt`` and the one rule that turns a run into its target month.

A run processes one month, ``yyyymm``. Given in the trigger form (or ``--conf``), it is used as is.
Left empty, a run started by a manifest event (production with ``DPC_MANIFEST_QUEUE_URL``: the S3
notification of ``<raw prefix>/yyyymm=YYYYMM/_manifest.json``, through SQS, on the Asset
``dpc_elt_manifests``) loads the month its key names; every other run (the daily schedule) loads the
calendar month *before* its logical date in Asia/Tokyo — hospitals deliver month M in the first days of
month M+1, and the daily 03:00 run keeps waiting for and (re)loading it, idempotently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

from dpc_elt.core import settings
from dpc_elt.core.errors import ParameterError

TIMEZONE = "Asia/Tokyo"
JST = ZoneInfo(TIMEZONE)
# A real month, not only six digits: 1900-01 … 2099-12.
YYYYMM_PATTERN = r"^(19|20)[0-9]{2}(0[1-9]|1[0-2])$"
_YYYYMM = re.compile(YYYYMM_PATTERN)

MANIFEST_WAIT_DEFAULT_MINUTES = 360
# 施設コード: nine digits (data contract §1), the facility of a one-facility reload.
FACILITY_CD_PATTERN = r"^[0-9]{9}$"
_FACILITY_CD = re.compile(FACILITY_CD_PATTERN)


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
        "facility_cd": {
            "default": None,
            "type": ["null", "string"],
            "minLength": 9,
            "maxLength": 9,
            "pattern": FACILITY_CD_PATTERN,
            "title": "Reload one facility only (facility_cd)",
            "description": (
                "A hospital resubmitted its own files: give its 9-digit facility code to validate and "
                "replace only that facility's rows of the month (raw, stage, mart), then recompute "
                "readmissions and re-export the months whose rows changed. Empty = the whole month."
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


def validate_facility_cd(value: object) -> str:
    """The facility code as a string, or ParameterError before any SQL runs."""
    if not isinstance(value, str) or not _FACILITY_CD.fullmatch(value):
        raise ParameterError("facility_cd must be a facility code of exactly nine digits (e.g. 131000123)")
    return value


def facility_of_params(params: Mapping[str, Any]) -> str | None:
    """The facility a run reloads (``facility_cd`` Param), or None for the whole month."""
    given = params.get("facility_cd")
    return None if given in (None, "") else validate_facility_cd(given)


def previous_month(moment: datetime) -> str:
    local = moment.astimezone(JST)
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}{month:02d}"


def target_month(
    params: dict[str, Any],
    logical_date: datetime | None,
    run_after: datetime | None,
    manifest_key: tuple[str, str] | None = None,
    raw_root: str = "",
) -> str:
    """The run's month: the ``yyyymm`` Param if given; else, for a run a manifest event started, the month
    its S3 key names (``manifest_key`` = bucket, key; checked against ``raw_root``); else the month
    before the logical date."""
    given = params.get("yyyymm")
    if given not in (None, ""):
        return validate_yyyymm(given)
    if manifest_key is not None:
        return month_of_manifest_key(*manifest_key, raw_root=raw_root)
    moment = logical_date or run_after
    if moment is None:
        raise ParameterError("yyyymm is empty and the run has no logical date to derive it from")
    return previous_month(moment)


def month_of_context(context: Any) -> str:
    """``target_month`` for a task's Airflow context (the one place every task asks). A run that manifest
    events started (and that names no month) loads the month of the oldest event's first S3 object."""
    dag_run = context["dag_run"]
    key = None
    if context["params"].get("yyyymm") in (None, "") and (events := triggering_manifest_events(context)):
        records = manifest_records(events)
        if not records:
            raise ParameterError(f"{MANIFEST_KEY_RULE}: the manifest event that started the run holds no S3 record")
        key = s3_object(records[0])
    raw_root = settings.get_settings().raw_root if key is not None else ""
    return target_month(
        context["params"], context.get("logical_date"), getattr(dag_run, "run_after", None), key, raw_root
    )


# ------------------------------------------------------------------------------ the manifest events

# The Asset a manifest event arrives on (dpc_elt.orchestration.manifest_events builds it with its
# watcher); named here because every task reads its events from the context through this name.
MANIFEST_ASSET_NAME = "dpc_elt_manifests"
MANIFEST_KEY_RULE = "a manifest event must name <raw root>/yyyymm=YYYYMM/_manifest.json of a real month"


def triggering_manifest_events(context: Any) -> list[Mapping[str, Any]]:
    """The extras of the manifest events that started this run, oldest first (none for a scheduled or
    manual run). Events re-queued through an alias are listed under the Asset too: only its key is read."""
    accessor = context.get("triggering_asset_events") or {}
    events = [event for key in accessor if getattr(key, "name", None) == MANIFEST_ASSET_NAME for event in accessor[key]]
    events.sort(key=lambda event: event.timestamp)
    return [dict(event.extra or {}) for event in events]


def manifest_records(extras: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The S3 event records in the events' SQS messages, in order; the same object named twice counts
    once. An event's extra is ``{"payload": {"message_batch": [<SQS message>, …]}}`` (what the triggerer
    stores for an AssetWatcher); each message ``Body`` is an S3 event notification. Messages without
    S3 records (S3's ``s3:TestEvent``) hold none."""
    records: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for extra in extras:
        payload = extra.get("payload") if isinstance(extra, Mapping) else None
        messages = payload.get("message_batch") if isinstance(payload, Mapping) else None
        for message in messages if isinstance(messages, list) else []:
            try:
                body = json.loads(message["Body"])
            except (TypeError, KeyError, ValueError):
                body = None
            found = body.get("Records") if isinstance(body, dict) else None
            for record in found if isinstance(found, list) else []:
                where = s3_object(record)
                if where is not None and where not in seen:
                    seen.add(where)
                    records.append(record)
    return records


def s3_object(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """(bucket, key) of one S3 event record; S3 URL-encodes the key (``=`` arrives as ``%3D``)."""
    try:
        return str(record["s3"]["bucket"]["name"]), unquote_plus(str(record["s3"]["object"]["key"]))
    except (TypeError, KeyError):
        return None


def month_of_manifest_key(bucket: str, key: str, *, raw_root: str) -> str:
    """The month of ``s3://<bucket>/<key>`` when it is ``<raw_root>/yyyymm=YYYYMM/_manifest.json`` with a
    real month; otherwise ``ParameterError`` naming the rule and the object (a name, never content)."""
    root_bucket, _, prefix = raw_root.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    folder = f"{prefix}/" if prefix else ""
    match = re.fullmatch(rf"{re.escape(folder)}yyyymm=([^/]*)/_manifest\.json", key)
    where = f"s3://{bucket}/{key}"
    if not raw_root.startswith("s3://") or bucket != root_bucket or match is None:
        raise ParameterError(f"{MANIFEST_KEY_RULE} (raw root {raw_root}); the event names {where}")
    try:
        return validate_yyyymm(match.group(1))
    except ParameterError as error:
        raise ParameterError(f"{MANIFEST_KEY_RULE}: {error}; the event names {where}") from None
