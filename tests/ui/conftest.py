"""An Airflow API server (UI + REST) of its own for the browser test, built with the same code as the
native topology (tests/topology/services.py): a throwaway AIRFLOW_HOME with a SQLite metadata DB, this
repo's DAGs serialized into it, one admin user whose password is made up per session. Only the API
server runs — no scheduler — so a triggered run stays queued: the UI is what is under test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.topology import services

ARTIFACTS = services.REPO / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("DPC_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def airflow_ui(tmp_path_factory) -> services.Airflow:
    if not Path(CHROMIUM).exists():  # Debian's chromium: make test installs it (scripts/install_services.sh)
        subprocess.run([str(services.REPO / "scripts" / "install_services.sh")], check=True)
    home = tmp_path_factory.mktemp("airflow-ui")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    airflow = services.Airflow(
        home=home / "airflow",
        db_url=f"sqlite:///{home}/airflow.db",
        api_port=services.free_port(),
        log_dir=ARTIFACTS,
        extra_env={"DPC_DATA_DIR": str(home / "data")},
    )
    try:
        airflow.init()
        airflow.cli("dags", "reserialize")
        airflow.start(components=("api-server",))

        def up() -> bool:
            airflow.check_running()
            return services.port_open(airflow.api_port)

        services.wait_for("the Airflow API server", up, timeout=180)
        yield airflow
    except BaseException:
        print(services.tail(ARTIFACTS / "airflow-api-server.log"))
        raise
    finally:
        airflow.stop()


@pytest.fixture(scope="session")
def api(airflow_ui) -> services.ApiClient:
    return services.ApiClient(airflow_ui.api_url, airflow_ui.username, airflow_ui.password)


@pytest.fixture
def page(airflow_ui):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 900})
        finally:
            browser.close()
