"""Where a message goes: always the task log; Slack through the provider's webhook notifier when
``DPC_SLACK_CONN_ID`` names a connection; SNS through the amazon provider's notifier when
``DPC_SNS_TOPIC_ARN`` is set; the local outbox file when neither is configured."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dpc_elt.core import settings
from dpc_elt.notify.message import Message

log = logging.getLogger(__name__)

SNS_TOPIC_PATTERN = re.compile(r"arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")


def write_outbox(message: Message, outbox_path: str) -> Path:
    path = Path(outbox_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"sent_at": datetime.now(UTC).isoformat(timespec="seconds"), **message.to_dict()}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def sns_subject(message: Message) -> str:
    """SNS subjects must be ASCII, one line, under 100 characters: the message's subject without
    its status mark."""
    text = f"{message.dag_id} {message.yyyymm or '(month unknown)'} {message.status} [{message.environment}]"
    text = "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in text)
    return text[:99]


def publish_sns(message: Message, context: Any, cfg: settings.Settings) -> str:
    """Publish the same notice as Slack (``Message.text()``) to the SNS topic, through the amazon
    provider's SnsNotifier; subscribers can filter on the status, environment and month attributes."""
    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

    arn = cfg.sns_topic_arn
    if not SNS_TOPIC_PATTERN.fullmatch(arn):
        raise ValueError("DPC_SNS_TOPIC_ARN must be an SNS topic ARN")
    attributes = {"status": message.status, "environment": message.environment, "dag_id": message.dag_id}
    if message.yyyymm:
        attributes["yyyymm"] = message.yyyymm
    SnsNotifier(
        aws_conn_id=cfg.aws_conn_id or None,
        target_arn=arn,
        message=message.text(),
        subject=sns_subject(message),
        message_attributes=attributes,
    ).notify(context)
    return f"sns:{arn}"


def deliver(message: Message, context: Any, cfg: settings.Settings | None = None) -> str:
    """Send the message; return where it went. Never dropped: without a Slack connection or an SNS
    topic it goes to the outbox file, and it is always written to the task log."""
    cfg = cfg or settings.get_settings()
    log.info("%s notification:\n%s", message.status, message.text())
    sent = []
    if cfg.slack_conn_id:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        SlackWebhookNotifier(slack_webhook_conn_id=cfg.slack_conn_id, text=message.text()).notify(context)
        sent.append(f"slack:{cfg.slack_conn_id}")
    if cfg.sns_topic_arn:
        sent.append(publish_sns(message, context, cfg))
    return ", ".join(sent) if sent else str(write_outbox(message, cfg.outbox_path))
