"""Fixtures of the operations tests: a settings object on a fresh data directory, a fake task
context, the seed (a verbatim copy in tests/operations/seed, compared with ../shared when present)
and an Airflow connection to a mocked AWS account."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dpc_elt.core import settings
from tests.operations.support import SEED_COPY


@pytest.fixture
def cfg(tmp_path, monkeypatch) -> settings.Settings:
    """Settings on a fresh data directory; task callables (which call get_settings) see the same."""
    monkeypatch.setenv("DPC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DPC_SLACK_CONN_ID", raising=False)
    settings.get_settings.cache_clear()
    yield settings.get_settings()
    settings.get_settings.cache_clear()


@pytest.fixture
def context():
    """Enough of a task context for our callables: ids, xcom, a logical date."""
    import pendulum

    class TI:
        dag_id = "dpc_maintenance_weekly"
        run_id = "scheduled__2026-11-21T19:00:00+00:00"
        task_id = "check_table_health"
        log_url = ""

        def __init__(self):
            self.pulled: dict = {}  # task_ids (tuple for a list) -> what xcom_pull returns

        def xcom_pull(self, task_ids=None, key="return_value"):
            return self.pulled.get(tuple(task_ids) if isinstance(task_ids, list) else task_ids)

    return {"ti": TI(), "logical_date": pendulum.datetime(2026, 11, 21, 19, tz="UTC"), "dag_run": SimpleNamespace()}


@pytest.fixture(scope="session")
def seed_text() -> str:
    return SEED_COPY.read_text(encoding="utf-8")


@pytest.fixture
def aws(monkeypatch):
    """A mocked AWS account (moto) behind an Airflow connection ``aws_test`` (env-var connection)."""
    import moto

    monkeypatch.setenv("AIRFLOW_CONN_AWS_TEST", '{"conn_type": "aws", "extra": {"region_name": "ap-northeast-1"}}')
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with moto.mock_aws():
        yield "aws_test"


@pytest.fixture
def log_lines():
    """Messages logged under ``dpc_elt`` (works with ``-p no:logging``, unlike caplog)."""
    import logging

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("dpc_elt")
    handler = Collect(level=logging.DEBUG)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(previous)
