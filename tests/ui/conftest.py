"""An Airflow API server (UI + REST) of its own for the browser test: a throwaway AIRFLOW_HOME with
a SQLite metadata DB, this repo's DAGs serialized into it, one admin user whose password is made
up per session. No scheduler runs, so a triggered run stays queued: the UI is what is under test.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("DPC_CHROMIUM", "/usr/bin/chromium")
START_TIMEOUT_SECONDS = 180


@dataclass(frozen=True)
class AirflowUi:
    base_url: str
    username: str
    password: str

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        """A REST call with a JWT from /auth/token, as an API client would make it."""
        token = _post_json(f"{self.base_url}/auth/token", {"username": self.username, "password": self.password})
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token['access_token']}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


def _post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, method="POST", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _airflow(env: dict[str, str], *args: str, log: Path) -> None:
    with log.open("ab") as out:
        subprocess.run([sys.executable, "-m", "airflow", *args], env=env, stdout=out, stderr=out, check=True)


@pytest.fixture(scope="session")
def airflow_ui(tmp_path_factory) -> AirflowUi:
    if not Path(CHROMIUM).exists():
        subprocess.run([str(REPO / "scripts" / "install_services.sh"), "chromium"], check=True)
    home = tmp_path_factory.mktemp("airflow-ui")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    (home / "passwords.json").write_text(json.dumps({"admin": password}))
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "DPC_DATA_DIR": str(home / "data"),
        "PYTHONPATH": str(REPO / "plugins"),
    }
    log = ARTIFACTS / "api-server.log"
    log.write_bytes(b"")
    _airflow(env, "db", "migrate", log=log)
    _airflow(env, "dags", "reserialize", log=log)
    with log.open("ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/api/v2/monitor/health", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"airflow api-server did not come up on {base_url}:\n{tail}") from None
                time.sleep(1)
        yield AirflowUi(base_url=base_url, username="admin", password=password)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def page(airflow_ui):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 900})
        finally:
            browser.close()
