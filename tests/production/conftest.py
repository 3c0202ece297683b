"""Fixtures of the production-backend tests: a moto S3/SNS/SQS/CloudWatch endpoint behind an Airflow AWS
connection, production settings, a fake task context and a Redshift Data API stub.

S3 is moto's *server* mode (``moto_server``, a separate process), not the ``mock_aws`` decorator: s3fs talks
to S3 through aiobotocore, which the decorator cannot intercept. The Airflow connection ``dpc_aws`` points
every client (s3fs, S3Hook, SnsHook, CloudWatch, RedshiftDataHook) at it. The Redshift Data API has no
usable moto backend (no BatchExecuteStatement): ``RedshiftDataStub`` puts botocore's ``Stubber`` on the
client, which checks every request against the service model and against the exact parameters the test
expects, in order, and records every request sent.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from dpc_elt.core import settings

REGION = "ap-northeast-1"
BUCKET = "dpc-test-bucket"
ROLE_ARN = "arn:aws:iam::123456789012:role/dpc-redshift-s3"
WORKGROUP = "dpc-elt"
DATABASE = "dpc"
CONN_ID = "dpc_aws"


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's server in its own process: its memory (it keeps every object) stays out of the
    client-side measurements, and its request log out of ours."""
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """A fresh moto account with the bucket, behind the Airflow connection ``dpc_aws``."""
    import boto3
    import requests

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        # Every client that does not go through the connection (fsspec's own s3fs) reaches moto too,
        # never AWS.
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"region_name": REGION, "endpoint_url": moto_endpoint},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    # fsspec keeps one s3fs per set of options: one made in another test directory (its own moto server)
    # would still talk to that server.
    from s3fs import S3FileSystem

    S3FileSystem.clear_instance_cache()
    boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return SimpleNamespace(endpoint=moto_endpoint, conn_id=CONN_ID, bucket=BUCKET)


def production_settings(**overrides: Any) -> SimpleNamespace:
    """The embedded settings with the production ones (a mutable copy: tests change single fields)."""
    settings.get_settings.cache_clear()
    base = dict(settings.get_settings().__dict__)
    base.update(
        backend="production",
        raw_root=f"s3://{BUCKET}/raw",
        processed_root=f"s3://{BUCKET}/processed",
        s3_bucket=BUCKET,
        redshift_workgroup=WORKGROUP,
        redshift_database=DATABASE,
        redshift_iam_role_arn=ROLE_ARN,
        aws_conn_id=CONN_ID,
        sns_topic_arn="",
        environment="test",
    )
    base.update(overrides)
    return SimpleNamespace(**base)


@pytest.fixture
def cfg(monkeypatch):
    """Production settings, also returned by ``settings.get_settings()`` for the code under test."""
    value = production_settings()
    monkeypatch.setattr(settings, "get_settings", lambda: value)
    return value


@pytest.fixture
def s3fs_(aws):
    from dpc_elt.backends.redshift import s3

    return s3.filesystem(aws.conn_id)


@pytest.fixture
def backend(cfg):
    """The production backend as ``get_backend()`` builds it from the (patched) settings."""
    from dpc_elt.backends import get_backend

    return get_backend()


class FakeTI:
    dag_id = "dpc_elt"
    run_id = "manual__2025-05-08T00:00:00+00:00"
    log_url = "http://airflow.invalid/log"

    def __init__(self, task_id: str = "task") -> None:
        self.task_id = task_id
        self.xcoms: dict[tuple[str, str], Any] = {}

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key))

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[(self.task_id, key)] = value


def task_context(yyyymm: str | None = "202504", run_type: str = "manual", wait_minutes: int = 0) -> dict[str, Any]:
    return {
        "ti": FakeTI(),
        "params": {"yyyymm": yyyymm, "manifest_wait_minutes": wait_minutes},
        "dag_run": SimpleNamespace(run_type=run_type, run_after=datetime(2025, 5, 8, tzinfo=UTC)),
        "logical_date": datetime(2025, 5, 8, tzinfo=UTC),
    }


_ids = itertools.count(1)


def statement_id() -> str:
    return f"00000000-0000-4000-8000-{next(_ids):012d}"


@dataclass
class RedshiftDataStub:
    """botocore's Stubber on a redshift-data client: each ``expect_*`` queues one exact request."""

    client: Any
    sent: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        from botocore.stub import Stubber

        self.stubber = Stubber(self.client)
        self.client.meta.events.register("provide-client-params.redshift-data.*", self._record)
        self.stubber.activate()

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.sent.append({"operation": model.name, **params})

    def _common(self, name: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"Database": DATABASE, "WorkgroupName": WORKGROUP, "WithEvent": False}
        if name is not None:
            params["StatementName"] = name
        return params

    def expect_batch(self, sqls: list[str], parameters: list[dict[str, str]] | None, name: Any = None) -> str:
        sid = statement_id()
        expected = {"Sqls": sqls, **self._common(name)}
        if parameters:
            expected["Parameters"] = parameters
        self.stubber.add_response("batch_execute_statement", {"Id": sid, "Database": DATABASE}, expected)
        return sid

    def expect_statement(self, sql: str, parameters: list[dict[str, str]] | None, name: Any = None) -> str:
        sid = statement_id()
        expected = {"Sql": sql, **self._common(name)}
        if parameters:
            expected["Parameters"] = parameters
        self.stubber.add_response("execute_statement", {"Id": sid, "Database": DATABASE}, expected)
        return sid

    def expect_describe(
        self, sid: str, status: str = "FINISHED", subs: list[dict[str, Any]] | None = None, **extra: Any
    ) -> None:
        response: dict[str, Any] = {"Id": sid, "Status": status, **extra}
        if subs is not None:
            response["SubStatements"] = [{"Id": f"{sid}:{n}", **sub} for n, sub in enumerate(subs, start=1)]
        self.stubber.add_response("describe_statement", response, {"Id": sid})

    def expect_result(self, sid: str, rows: list[list[Any]], columns: list[str] | None = None) -> None:
        def field_of(value: Any) -> dict[str, Any]:
            if value is None:
                return {"isNull": True}
            if isinstance(value, int):
                return {"longValue": value}
            if isinstance(value, float):
                return {"doubleValue": value}
            return {"stringValue": str(value)}

        response: dict[str, Any] = {"Records": [[field_of(v) for v in row] for row in rows]}
        if columns is not None:
            response["ColumnMetadata"] = [{"name": name} for name in columns]
        self.stubber.add_response("get_statement_result", response, {"Id": sid})

    def assert_done(self) -> None:
        self.stubber.assert_no_pending_responses()


def stub_data_api(conn_id: str, monkeypatch) -> RedshiftDataStub:
    """Stub the Data API client every RedshiftBackend of the test gets; quick reads do not sleep.
    Deactivate with ``stub.stubber.deactivate()`` when the test ends."""
    from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook

    from dpc_elt.backends.redshift import data_api as module

    hook = RedshiftDataHook(aws_conn_id=conn_id)
    stub = RedshiftDataStub(hook.conn)
    monkeypatch.setattr(module, "new_hook", lambda _conn_id: hook)
    monkeypatch.setattr(module, "QUICK_POLL_SECONDS", 0)
    return stub


@pytest.fixture
def data_api(aws, cfg, monkeypatch):
    """The Data API of every RedshiftBackend built during the test, stubbed."""
    stub = stub_data_api(CONN_ID, monkeypatch)
    yield stub
    stub.stubber.deactivate()


def sqls_sent(stub: RedshiftDataStub) -> list[str]:
    """Every SQL statement that reached the Data API, in order (batches flattened)."""
    return [sql for request in stub.sent for sql in request.get("Sqls", [request.get("Sql")]) if sql]
