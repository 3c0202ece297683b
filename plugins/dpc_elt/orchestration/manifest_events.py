"""Start ``dpc_elt`` when a month's ``_manifest.json`` lands; the daily 03:00 JST run stays as the fallback.

In production the raw bucket sends an S3 event notification for every ``<raw prefix>/…/_manifest.json``
to an SQS queue (``infra/terraform/modules/manifest_events``). With that queue named in
``DPC_MANIFEST_QUEUE_URL`` the DAG's schedule is *the cron OR the Asset* :data:`MANIFEST_ASSET_NAME`
(:func:`schedule`): an ``AssetWatcher`` on common-messaging's ``MessageQueueTrigger`` (scheme ``sqs``,
which the amazon provider runs as its ``SqsSensorTrigger`` in the triggerer) turns each received batch
of messages into an Asset event, and each Asset event queues a run. Without the setting (the embedded
default, a laptop) the schedule is the cron alone and nothing here is imported at parse time.

A run that manifest events started derives its month from them (``core.params.month_of_context``) and
begins with ``validate_manifest.manifest_event`` (:func:`start_or_skip`), a short-circuit:

* the events of *other* months that reached this run (the scheduler hands a run every event queued
  while the previous run was going) are re-queued as a new Asset event (through the alias
  :data:`REQUEUED_MANIFESTS`), so the next run takes the next month — one month per run, none lost;
* if the month was loaded from a manifest with the same SHA-256 (``core.run_marker.LoadedManifest``)
  nothing is left to do: the rest of the run is skipped, and the run ends green with one log line;
* otherwise (a new or changed manifest) the run goes on and loads the month.

Scheduled and manual runs pass through ``manifest_event`` unchanged and reload as before.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow.sdk import Asset, AssetAlias, AssetOrTimeSchedule, AssetWatcher, CronTriggerTimetable

from dpc_elt.backends import get_backend
from dpc_elt.core import manifest, params, run_marker, settings
from dpc_elt.core.errors import ParameterError
from dpc_elt.core.params import MANIFEST_ASSET_NAME, TIMEZONE

log = logging.getLogger(__name__)

DAILY_CRON = "0 3 * * *"
MANIFEST_WATCHER_NAME = "dpc_elt_manifest_queue"
REQUEUED_MANIFESTS = AssetAlias("dpc_elt_requeued_manifests")
# How the triggerer reads the queue (SqsSensorTrigger's arguments): long polls of 20 s (the most SQS
# allows) for up to 10 messages, then a pause of 30 s — a manifest starts its run within about a minute,
# at about 1,500 ReceiveMessage calls a day.
QUEUE_POLL: dict[str, Any] = {"max_messages": 10, "wait_time_seconds": 20, "waiter_delay": 30}
# Only messages that carry S3 records become Asset events. The s3:TestEvent S3 sends once when the
# notification is created has none: it stays in the queue and goes to the dead-letter queue.
S3_RECORDS_ONLY: dict[str, Any] = {
    "message_filtering": "jsonpath",
    "message_filtering_config": "Records[*].s3.object.key",
}


def event_driven(cfg: settings.Settings | None = None) -> bool:
    """Whether this deployment starts runs from manifest events (``DPC_MANIFEST_QUEUE_URL`` is set)."""
    return bool((cfg or settings.get_settings()).manifest_queue_url)


def daily_timetable() -> CronTriggerTimetable:
    return CronTriggerTimetable(DAILY_CRON, timezone=TIMEZONE)


def manifest_trigger(cfg: settings.Settings) -> Any:
    """common-messaging's trigger for the queue; nothing is looked up until the triggerer runs it."""
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    return MessageQueueTrigger(
        scheme="sqs",
        sqs_queue=cfg.manifest_queue_url,
        aws_conn_id=cfg.aws_conn_id or None,
        **QUEUE_POLL,
        **S3_RECORDS_ONLY,
    )


def manifests_asset(cfg: settings.Settings | None = None, *, watched: bool = True) -> Asset:
    """The raw root's manifests as an Asset; ``watched`` adds the watcher on the queue (the schedule's
    definition; a task that only adds an event names the Asset without it)."""
    cfg = cfg or settings.get_settings()
    watchers = [AssetWatcher(name=MANIFEST_WATCHER_NAME, trigger=manifest_trigger(cfg))] if watched else []
    return Asset(name=MANIFEST_ASSET_NAME, uri=cfg.raw_root.rstrip("/"), group="dpc_elt", watchers=watchers)


def schedule(cfg: settings.Settings | None = None) -> CronTriggerTimetable | AssetOrTimeSchedule:
    """03:00 JST every day; with a manifest queue, also whenever a manifest lands."""
    cfg = cfg or settings.get_settings()
    if not event_driven(cfg):
        return daily_timetable()
    return AssetOrTimeSchedule(timetable=daily_timetable(), assets=manifests_asset(cfg))


# ------------------------------------------------------------------------------- manifest_event


def month_of_record(record: dict[str, Any], raw_root: str) -> str | None:
    """The month an S3 record names, or None when it names no month manifest."""
    where = params.s3_object(record)
    try:
        return params.month_of_manifest_key(*where, raw_root=raw_root) if where else None
    except ParameterError:
        return None


def requeue_others(context: Any, cfg: settings.Settings, records: list[dict[str, Any]]) -> list[str]:
    """Re-queue every record after the first whose month differs from the first's (or that names no
    month: its own run fails, naming the rule) as one new Asset event; the S3 keys re-queued."""
    first = month_of_record(records[0], cfg.raw_root) if records else None
    others = [r for r in records[1:] if first is None or month_of_record(r, cfg.raw_root) != first]
    if not others:
        return []
    message = {"MessageId": f"requeued-by-{context['ti'].run_id}", "Body": json.dumps({"Records": others})}
    extra = {"requeued_by": context["ti"].run_id, "payload": {"message_batch": [message]}}
    context["outlet_events"][REQUEUED_MANIFESTS].add(manifests_asset(cfg, watched=False), extra=extra)
    keys = [where[1] for r in others if (where := params.s3_object(r))]
    log.info("re-queued %d manifest event(s) for the next runs, one month each: %s", len(keys), keys)
    return keys


def start_or_skip(context: Any) -> bool:
    """``manifest_event``: True = load the month; False = short-circuit (the same manifest is loaded)."""
    run_type = getattr(context["dag_run"], "run_type", "")
    extras = params.triggering_manifest_events(context)
    if not extras:
        log.info("%s run, not started by a manifest event: it loads its month as before", run_type)
        return True
    cfg = settings.get_settings()
    records = params.manifest_records(extras)
    requeue_others(context, cfg, records)
    try:
        yyyymm = params.month_of_context(context)
    except ParameterError as error:
        # Not raised here: the events re-queued above are recorded only when this task succeeds.
        log.error("%s — wait_for_manifest refuses the run", error)
        return True

    backend = get_backend(cfg)
    fs, root = backend.filesystem(cfg.raw_root)
    current = manifest.manifest_sha256(fs, root, yyyymm)
    loaded = run_marker.read_loaded_manifest(*backend.filesystem(run_marker.loaded_manifest_uri(cfg, yyyymm)))
    if current is None:
        log.info("%s: a manifest event, but no _manifest.json under the raw root now: wait_for_manifest waits", yyyymm)
        return True
    if loaded is None:
        log.info("%s: manifest sha256 %s, no load of the month recorded: loading", yyyymm, current)
        return True
    if loaded.manifest_sha256 != current:
        log.info(
            "%s: manifest changed (sha256 %s; %s loaded %s): reloading",
            yyyymm,
            current,
            loaded.run_id,
            loaded.manifest_sha256,
        )
        return True
    log.info(
        "%s: NOTHING TO DO — _manifest.json (sha256 %s) is the one %s loaded at %s; the rest of the run is "
        "skipped. To reload the month anyway, trigger it: airflow dags trigger dpc_elt --conf "
        '\'{"yyyymm": "%s"}\'',
        yyyymm,
        current,
        loaded.run_id,
        loaded.to_dict()["loaded_at"],
        yyyymm,
    )
    return False
