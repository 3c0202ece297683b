"""The docker-compose topology without Docker: PostgreSQL, an S3 server and Airflow's four components.

Used by ``tests/topology/test_native_topology.py`` and, through ``scripts/services.sh``, by
``make services-up`` / ``services-down`` / ``services-seed`` / ``backfill-services``:

* :class:`Postgres` — a throwaway cluster (Debian's ``initdb``/``pg_ctl``) on 127.0.0.1, the metadata DB;
* :class:`MotoS3` — ``moto_server``, an S3-compatible server standing in for MinIO/S3;
* :class:`Airflow` — ``airflow api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` as
  separate processes (LocalExecutor) with their own ``AIRFLOW_HOME``;
* :class:`ApiClient` — the REST API (``/api/v2``) with a SimpleAuthManager JWT from ``/auth/token``;
* :class:`Topology` — all of the above, pointed at ``s3://<bucket>/raw`` and ``/processed``.

Every server process runs in its own process group (``start_new_session``) and is stopped by group,
so a scheduler's task processes go with it. Logs go to one folder, one file per process.
Credentials are generated per topology or are local-only defaults; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
DAG_ID = "dpc_elt"
BUCKET = "dpc-elt"
POOL = "dpc_warehouse"
JST = ZoneInfo("Asia/Tokyo")
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Local-only credentials of the fake S3 server (moto accepts any key).
S3_ACCESS_KEY = "local-only"
S3_SECRET_KEY = "local-only"
S3_REGION = "us-east-1"
TERMINAL_RUN_STATES = {"success", "failed"}


class ServiceError(RuntimeError):
    """A service did not start, answer or finish as expected."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Call ``check`` until it returns something truthy; ServiceError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception as error:  # the service may still be coming up
            last_error = error
        else:
            if result:
                return result
        time.sleep(interval)
    raise ServiceError(f"timed out after {timeout:.0f}s waiting for {what}" + (f": {last_error}" if last_error else ""))


def logical_date_for_month(yyyymm: str) -> datetime:
    """The daily 03:00 JST run that loads ``yyyymm``: the 1st of the next month (params.previous_month)."""
    year, month = int(yyyymm[:4]), int(yyyymm[4:])
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, 3, 0, tzinfo=JST)


def months_between(first: str, last: str) -> list[str]:
    """``first`` … ``last`` inclusive (yyyymm), like scripts/months.sh."""
    for value in (first, last):
        if len(value) != 6 or not value.isdigit() or not 1 <= int(value[4:]) <= 12:
            raise ValueError(f"{value!r} is not a month yyyymm")
    if first > last:
        raise ValueError(f"FROM {first} is after TO {last}")
    months, year, month = [], int(first[:4]), int(first[4:])
    while f"{year:04d}{month:02d}" <= last:
        months.append(f"{year:04d}{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------------------------------
# processes


@dataclass
class Process:
    """One long-running server process in its own process group, output to ``log``."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    pid: int | None = None
    _popen: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self._popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # its own process group: stop() takes its children too
            )
        self.pid = self._popen.pid
        return self

    def running(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return self.pid is not None and _group_alive(self.pid)

    def stop(self, grace: float = 20.0) -> None:
        if self.pid is None:
            return
        stop_group(self.pid, grace)
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_group(pgid: int, grace: float = 20.0) -> None:
    """SIGTERM the process group ``pgid``, SIGKILL what is left after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(pgid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-pgid, os.WNOHANG)  # reap our own children so they do not linger as zombies
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def run(argv: list[str], log: Path, env: dict[str, str] | None = None, timeout: float = 600) -> None:
    """A one-off command; its output is appended to ``log`` and shown in the error if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False)
    if result.returncode != 0:
        raise ServiceError(f"{' '.join(argv[:3])} … exited {result.returncode}:\n{tail(log, 30)}")


# --------------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_bin_dir() -> Path:
    """Debian's server binaries (postgresql-NN), newest version first; PG_BIN overrides."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]), reverse=True)
    if found:
        return found[0].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise ServiceError("PostgreSQL server binaries not found: run scripts/install_services.sh")


@dataclass
class Postgres:
    """A PostgreSQL cluster in ``root`` listening on 127.0.0.1:``port`` only, database ``airflow``.

    Authentication is ``trust`` for loopback connections: a throwaway, local-only metadata DB. The
    server refuses to run as root, so as root every command runs as the ``postgres`` user.
    """

    root: Path
    port: int
    log_dir: Path
    user: str = "airflow"
    database: str = "airflow"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def server_log(self) -> Path:
        return self.root / "server.log"  # written by the server's user, copied to log_dir on stop

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _as_server_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def _bin(self, name: str) -> str:
        return str(postgres_bin_dir() / name)

    def start(self) -> Postgres:
        log = self.log_dir / "postgres-setup.log"
        fresh = not (self.data_dir / "PG_VERSION").exists()
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            for parent in self.root.parents:  # the server user must reach its folder
                if parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o011)
        if fresh:
            run(
                self._as_server_user(
                    [self._bin("initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8"]
                ),
                log,
            )
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
        pg_ctl = [self._bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.server_log), "-o", options]
        run(self._as_server_user([*pg_ctl, "-w", "-t", "60", "start"]), log)
        if fresh:
            run(
                [self._bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database],
                log,
            )
        return self

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(ServiceError):
                run(
                    self._as_server_user([self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]),
                    self.log_dir / "postgres-setup.log",
                )
        if self.server_log.exists():
            shutil.copyfile(self.server_log, self.log_dir / "postgres.log")


# --------------------------------------------------------------------------------------------------
# S3


@dataclass
class MotoS3:
    """``moto_server`` on 127.0.0.1:``port`` with one bucket; in memory, gone when it stops."""

    port: int
    log_dir: Path
    bucket: str = BUCKET
    process: Process | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What botocore, aiobotocore and s3fs need to talk to this server instead of AWS."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": S3_REGION,
        }

    def start(self) -> MotoS3:
        binary = VENV_BIN / "moto_server"
        self.process = Process(
            "moto", [str(binary), "-H", "127.0.0.1", "-p", str(self.port)], self.log_dir / "moto.log"
        ).start()
        wait_for(f"moto_server on port {self.port}", lambda: port_open(self.port), timeout=60, interval=0.3)
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def client(self):
        import boto3

        env = self.env()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_REGION,
        )

    def keys(self, prefix: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def upload_tree(local_root: Path, s3_client, bucket: str, prefix: str) -> list[str]:
    """Every file under ``local_root`` to ``s3://bucket/prefix/<relative path>``; the keys written.

    Each month's ``_manifest.json`` goes last, as a hospital delivers: the sensor waits for it.
    """
    keys = []
    files = [p for p in local_root.rglob("*") if p.is_file()]
    for path in sorted(files, key=lambda p: (p.name == "_manifest.json", str(p))):
        key = f"{prefix.strip('/')}/{path.relative_to(local_root).as_posix()}"
        s3_client.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys


def generate_months(months: str, out: Path, facilities: int = 3, seed: int = 1) -> None:
    """Synthetic DPC month folders (``python -m dpc_elt.synthetic``) under ``out``."""
    argv = [str(VENV_BIN / "python"), "-m", "dpc_elt.dev.synthetic", "--facilities", str(facilities)]
    argv += ["--months", months, "--out", str(out), "--seed", str(seed), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    subprocess.run(argv, check=True, env=env, timeout=600)


# --------------------------------------------------------------------------------------------------
# Airflow


@dataclass
class Airflow:
    """Airflow 3 with LocalExecutor: four components as separate processes sharing ``home`` and the DB."""

    home: Path
    db_url: str
    api_port: int
    log_dir: Path
    extra_env: dict[str, str]
    username: str = "admin"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    api_secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    log_server_port: int = field(default_factory=free_port)
    trigger_log_server_port: int = field(default_factory=free_port)
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    def env(self) -> dict[str, str]:
        # Nothing of the caller's Airflow or dpc_elt settings leaks in (pytest sets its own).
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DPC_", "AWS_"))}
        return {
            **base,
            "PATH": f"{VENV_BIN}:{base.get('PATH', '/usr/bin:/bin')}",
            "PYTHONPATH": str(REPO / "plugins"),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Naive dates (a CLI --logical-date without offset) are JST, like the DAG's schedule; the UI
            # shows the browser's time zone (Airflow 3 has no server-side UI default any more).
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Tokyo",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__API__SECRET_KEY": self.api_secret_key,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.trigger_log_server_port),
            # Months are triggered or backfilled here; no daily run waits hours for a delivery.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            **self.extra_env,
        }

    def cli(self, *args: str, timeout: float = 600) -> None:
        run([str(VENV_BIN / "airflow"), *args], self.log_dir / "airflow-cli.log", env=self.env(), timeout=timeout)

    def init(self) -> Airflow:
        """What airflow-init does in docker-compose.yaml: migrate, the warehouse pool, the admin user."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate")
        self.cli("pools", "set", POOL, "1", "One writer for the embedded DuckDB warehouse")
        self.passwords_file.write_text(json.dumps({self.username: self.password}) + "\n", encoding="utf-8")
        self.passwords_file.chmod(0o600)
        return self

    def start(self, components: Iterable[str] = AIRFLOW_COMPONENTS) -> Airflow:
        env = self.env()
        for component in components:
            argv = [str(VENV_BIN / "airflow"), component]
            if component == "api-server":
                argv += ["--host", "127.0.0.1", "--port", str(self.api_port)]
            self.processes[component] = Process(
                component, argv, self.log_dir / f"airflow-{component}.log", env=env, cwd=self.home
            ).start()
        return self

    def check_running(self) -> None:
        dead = [name for name, proc in self.processes.items() if not proc.running()]
        if dead:
            raise ServiceError(f"Airflow component(s) exited: {', '.join(dead)}")

    def wait_healthy(self, timeout: float = 300) -> ApiClient:
        """Until /api/v2/monitor/health reports every component healthy; then a logged-in client."""

        def healthy() -> bool:
            self.check_running()
            import httpx

            health = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=10).json()
            parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
            return all((health.get(part) or {}).get("status") == "healthy" for part in parts)

        wait_for("Airflow components to report healthy", healthy, timeout=timeout, interval=2)
        return ApiClient(self.api_url, self.username, self.password)

    def stop(self) -> None:
        # The scheduler first: it owns the task processes; the API server last (tasks report to it).
        for name in ("scheduler", "triggerer", "dag-processor", "api-server"):
            if name in self.processes:
                self.processes[name].stop()


# --------------------------------------------------------------------------------------------------
# REST API


class ApiClient:
    """The Airflow 3 REST API as a user (SimpleAuthManager: POST /auth/token → Bearer JWT)."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        response = httpx.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        if response.status_code not in (200, 201):
            raise ServiceError(f"POST /auth/token: {response.status_code} {response.text[:200]}")
        token = response.json()["access_token"]
        self._http = httpx.Client(
            base_url=f"{self.base_url}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ServiceError(f"{method} /api/v2{path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def wait_dag(self, dag_id: str = DAG_ID, timeout: float = 300) -> dict[str, Any]:
        """Until the dag-processor has parsed ``dag_id``; import errors fail at once."""

        def parsed() -> dict[str, Any] | None:
            errors = self.request("GET", "/importErrors")["import_errors"]
            if errors:
                raise ServiceError(f"DAG import errors: {json.dumps(errors)[:2000]}")
            response = self._http.get(f"/dags/{dag_id}")
            return response.json() if response.status_code == 200 else None

        return wait_for(f"DAG {dag_id} to be parsed", parsed, timeout=timeout, interval=2)

    def unpause(self, dag_id: str = DAG_ID) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, yyyymm: str, dag_id: str = DAG_ID) -> str:
        """A manual run for one month (the trigger form's ``yyyymm``); the run id."""
        body = {"logical_date": None, "conf": {"yyyymm": yyyymm}, "note": f"month {yyyymm}"}
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def run(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, Any]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_states(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, str]:
        items = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return {ti["task_id"]: ti["state"] for ti in items["task_instances"]}

    def wait_run(
        self, run_id: str, timeout: float, dag_id: str = DAG_ID, alive: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Until the run has ended (success or failed); ``alive`` is called on every poll."""

        def ended() -> dict[str, Any] | None:
            if alive is not None:
                alive()
            run = self.run(run_id, dag_id)
            return run if run["state"] in TERMINAL_RUN_STATES else None

        return wait_for(f"run {run_id} to end", ended, timeout=timeout, interval=3)

    def backfill_month(
        self, yyyymm: str, dag_id: str = DAG_ID, reprocess: str = "completed", facility_cd: str | None = None
    ) -> dict[str, Any]:
        """A backfill of exactly one run: the daily run whose logical date loads ``yyyymm`` (with
        ``facility_cd``: only that facility's rows of it).

        Airflow allows one running backfill per DAG: call this once the previous one has completed.
        """
        when = logical_date_for_month(yyyymm).isoformat()
        body = {
            "dag_id": dag_id,
            "from_date": when,
            "to_date": when,
            "max_active_runs": 1,
            "reprocess_behavior": reprocess,
            # empty yyyymm: the run derives the month from its logical date
            "dag_run_conf": {"facility_cd": facility_cd} if facility_cd else {},
        }
        return self.request("POST", "/backfills", json=body)

    def backfill_runs(self, backfill: dict[str, Any], dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        """The runs of ``backfill`` (the API's run list does not carry the backfill id: match the range)."""
        params = {
            "run_type": "backfill",
            "logical_date_gte": backfill["from_date"],
            "logical_date_lte": backfill["to_date"],
            "limit": 1000,
        }
        return self.request("GET", f"/dags/{dag_id}/dagRuns", params=params)["dag_runs"]

    def note_month(self, backfill: dict[str, Any], yyyymm: str, dag_id: str = DAG_ID) -> None:
        """The month in the note of the backfill's run, where a person looks for it in the UI (a backfill
        run's id and logical date name the day after the month, in UTC)."""

        def created() -> list[dict[str, Any]] | None:
            return self.backfill_runs(backfill, dag_id) or None

        for run in wait_for(f"the run of backfill {backfill['id']}", created, timeout=60, interval=1):
            self.request(
                "PATCH",
                f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}",
                params={"update_mask": "note"},
                json={"note": f"month {yyyymm}"},
            )

    def wait_backfill(
        self, backfill: dict[str, Any], timeout: float, dag_id: str = DAG_ID, alive: Callable[[], None] | None = None
    ) -> list[dict[str, Any]]:
        """Until the backfill is completed and its runs have ended; its runs."""

        def done() -> list[dict[str, Any]] | None:
            if alive is not None:
                alive()
            current = self.request("GET", f"/backfills/{backfill['id']}")
            runs = self.backfill_runs(current, dag_id)
            finished = runs and all(run["state"] in TERMINAL_RUN_STATES for run in runs)
            return runs if current.get("completed_at") and finished else None

        return wait_for(f"backfill {backfill['id']} to complete", done, timeout=timeout, interval=3)

    def backfill_months(
        self,
        months: Iterable[str],
        timeout_per_month: float = 1800,
        echo: Callable[[str], None] | None = None,
        alive: Callable[[], None] | None = None,
        facility_cd: str | None = None,
    ) -> dict[str, str]:
        """One single-run backfill per month, in order (with ``facility_cd``, of that facility only); the
        run state per month. Stops at a failure."""
        results: dict[str, str] = {}
        for yyyymm in months:
            backfill = self.backfill_month(yyyymm, facility_cd=facility_cd)
            self.note_month(backfill, yyyymm)
            if echo:
                echo(f"==> {yyyymm}: backfill {backfill['id']} (logical date {logical_date_for_month(yyyymm)})")
            runs = self.wait_backfill(backfill, timeout=timeout_per_month, alive=alive)
            results[yyyymm] = ",".join(sorted({run["state"] for run in runs}))
            if echo:
                echo(f"    {yyyymm}: {results[yyyymm]} ({', '.join(run['dag_run_id'] for run in runs)})")
            if results[yyyymm] != "success":
                break
        return results


# --------------------------------------------------------------------------------------------------
# the whole topology


@dataclass
class Ports:
    postgres: int = field(default_factory=free_port)
    s3: int = field(default_factory=free_port)
    api: int = field(default_factory=free_port)


class Topology:
    """PostgreSQL + moto S3 + Airflow, the DAG reading ``s3://<bucket>/raw`` and writing ``/processed``."""

    def __init__(self, root: Path, log_dir: Path, ports: Ports | None = None, password: str | None = None) -> None:
        self.root = root
        self.log_dir = log_dir
        self.ports = ports or Ports()
        self.postgres = Postgres(self._pg_root(), self.ports.postgres, log_dir)
        self.s3 = MotoS3(self.ports.s3, log_dir)
        self.data_dir = root / "dpc-data"
        dpc_env = {
            "DPC_BACKEND": "embedded",
            "DPC_ENVIRONMENT": "local-services",
            "DPC_DATA_DIR": str(self.data_dir),
            "DPC_DUCKDB_PATH": str(self.data_dir / "warehouse" / "dpc.duckdb"),
            "DPC_RAW_ROOT": f"s3://{self.s3.bucket}/raw",
            "DPC_PROCESSED_ROOT": f"s3://{self.s3.bucket}/processed",
            "DPC_MANIFEST_POKE_SECONDS": "2",
            **self.s3.env(),
        }
        self.airflow = Airflow(root / "airflow", self.postgres.url, self.ports.api, log_dir, dpc_env)
        if password:
            self.airflow.password = password

    def _pg_root(self) -> Path:
        # As root the server runs as "postgres", which must reach the folder: keep it out of 0700 trees.
        if os.geteuid() == 0 and not (self.root / "postgres").exists():
            return Path(tempfile.mkdtemp(prefix="dpc-elt-pg-"))
        return self.root / "postgres"

    def start(self, timeout: float = 300) -> ApiClient:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.postgres.start()
        self.s3.start()
        self.airflow.init().start()
        client = self.airflow.wait_healthy(timeout=timeout)
        client.wait_dag(timeout=timeout)
        client.unpause()
        return client

    def stop(self) -> None:
        """Stop everything started, in reverse order; safe to call after a partial start."""
        errors = []
        for stop in (self.airflow.stop, self.s3.stop, self.postgres.stop):
            try:
                stop()
            except Exception as error:
                errors.append(error)
        if self.postgres.root != self.root / "postgres" and self.postgres.root.name.startswith("dpc-elt-pg-"):
            shutil.rmtree(self.postgres.root, ignore_errors=True)
        if errors:
            raise ServiceError(f"stopping the topology: {errors}")

    def alive(self) -> None:
        self.airflow.check_running()
        if self.s3.process is not None and not self.s3.process.running():
            raise ServiceError("moto_server exited")

    def seed(self, months: str, facilities: int = 3) -> list[str]:
        """Synthetic months into ``s3://<bucket>/raw``; the keys uploaded."""
        with tempfile.TemporaryDirectory(prefix="dpc-elt-seed-") as tmp:
            generate_months(months, Path(tmp), facilities=facilities)
            return upload_tree(Path(tmp), self.s3.client(), self.s3.bucket, "raw")

    def log_tails(self, lines: int = 40) -> str:
        return "\n\n".join(
            f"===== {path.name} (last {lines} lines) =====\n{tail(path, lines)}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


# --------------------------------------------------------------------------------------------------
# developer commands (scripts/services.sh)

STATE_DIR = Path(os.environ.get("DPC_SERVICES_DIR", REPO / "data" / "services"))


@dataclass
class State:
    """What ``up`` leaves behind for ``down``, ``seed`` and ``backfill``."""

    root: str
    log_dir: str
    pg_root: str
    postgres_port: int
    s3_port: int
    api_port: int
    username: str
    password: str
    groups: dict[str, int]

    @classmethod
    def load(cls) -> State:
        path = STATE_DIR / "state.json"
        if not path.exists():
            raise SystemExit(f"no running services ({path} missing): make services-up")
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def save(self) -> None:
        path = STATE_DIR / "state.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        path.chmod(0o600)


def _cmd_up(args: argparse.Namespace) -> None:
    if (STATE_DIR / "state.json").exists():
        raise SystemExit(f"services already up ({STATE_DIR / 'state.json'}); make services-down first")
    ports = Ports(postgres=args.postgres_port, s3=args.s3_port, api=args.api_port)
    for name, port in asdict(ports).items():
        if port_open(port):
            raise SystemExit(f"port {port} ({name}) is in use: pick another with --{name.replace('_', '-')}-port")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    topology = Topology(STATE_DIR, STATE_DIR / "logs", ports, password=args.password)
    try:
        topology.start()
    except BaseException:
        print(topology.log_tails(), file=sys.stderr)
        topology.stop()
        raise
    groups = {name: proc.pid for name, proc in topology.airflow.processes.items()}
    groups["moto"] = topology.s3.process.pid
    State(
        str(STATE_DIR),
        str(topology.log_dir),
        str(topology.postgres.root),
        ports.postgres,
        ports.s3,
        ports.api,
        topology.airflow.username,
        topology.airflow.password,
        groups,
    ).save()
    print(f"""==> services up (logs: {topology.log_dir})
    Airflow UI   {topology.airflow.api_url}   user {topology.airflow.username}  password {topology.airflow.password}
    S3 (moto)    {topology.s3.endpoint}   bucket s3://{topology.s3.bucket}  (in memory: seed it, make services-seed)
    PostgreSQL   127.0.0.1:{ports.postgres}  database airflow
    make services-seed MONTHS=202401-202412 · make backfill-services FROM=202401 TO=202412 · make services-down""")


def _cmd_down(_args: argparse.Namespace) -> None:
    state = State.load()
    for name in ("scheduler", "triggerer", "dag-processor", "api-server", "moto"):
        if name in state.groups:
            stop_group(state.groups[name])
    postgres = Postgres(Path(state.pg_root), state.postgres_port, Path(state.log_dir))
    postgres.stop()
    if Path(state.pg_root) != Path(state.root) / "postgres":
        shutil.rmtree(state.pg_root, ignore_errors=True)
    (STATE_DIR / "state.json").unlink()
    print(f"==> services stopped (logs kept in {state.log_dir})")


def _cmd_status(_args: argparse.Namespace) -> None:
    state = State.load()
    for name, pgid in state.groups.items():
        print(f"{name:14} {'running' if _group_alive(pgid) else 'STOPPED'} (process group {pgid})")
    print(f"{'postgres':14} {'running' if port_open(state.postgres_port) else 'STOPPED'} (port {state.postgres_port})")
    print(f"UI http://127.0.0.1:{state.api_port}  user {state.username}  password {state.password}")


def _cmd_seed(args: argparse.Namespace) -> None:
    state = State.load()
    s3 = MotoS3(state.s3_port, Path(state.log_dir))
    with tempfile.TemporaryDirectory(prefix="dpc-elt-seed-") as tmp:
        generate_months(args.months, Path(tmp))
        keys = upload_tree(Path(tmp), s3.client(), s3.bucket, "raw")
    print(f"==> {len(keys)} files of {args.months} uploaded to s3://{s3.bucket}/raw")


def _cmd_backfill(args: argparse.Namespace) -> None:
    months = months_between(args.first, args.last)
    if args.api_url:
        password = args.password or os.environ.get("AIRFLOW_PASSWORD", "")
        client = ApiClient(args.api_url, args.username, password)
    else:
        state = State.load()
        client = ApiClient(f"http://127.0.0.1:{state.api_port}", state.username, state.password)
    from dpc_elt.core.params import validate_facility_cd

    facility_cd = validate_facility_cd(args.facility_cd) if args.facility_cd else None
    results = client.backfill_months(months, echo=print, facility_cd=facility_cd)
    failed = {month: state for month, state in results.items() if state != "success"}
    if failed or len(results) != len(months):
        raise SystemExit(f"backfill stopped: {failed or 'not every month ran'}")
    print(f"==> {len(months)} month(s) loaded: {months[0]}–{months[-1]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scripts/services.sh", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start PostgreSQL, moto S3 and Airflow (state in data/services/)")
    up.add_argument("--api-port", type=int, default=int(os.environ.get("DPC_SERVICES_API_PORT", "8080")))
    up.add_argument("--s3-port", type=int, default=int(os.environ.get("DPC_SERVICES_S3_PORT", "9000")))
    up.add_argument("--postgres-port", type=int, default=int(os.environ.get("DPC_SERVICES_PG_PORT", "55432")))
    up.add_argument(
        "--password",
        default=os.environ.get("DPC_SERVICES_PASSWORD", "admin"),
        help="the UI user's password (local only; default admin)",
    )
    up.set_defaults(func=_cmd_up)
    sub.add_parser("down", help="stop everything 'up' started").set_defaults(func=_cmd_down)
    sub.add_parser("status", help="which processes run").set_defaults(func=_cmd_status)
    seed = sub.add_parser("seed", help="synthetic months into the bucket")
    seed.add_argument("--months", default="202401-202412", help="YYYYMM-YYYYMM (default 202401-202412)")
    seed.set_defaults(func=_cmd_seed)
    backfill = sub.add_parser("backfill", help="one backfill run per month FROM..TO through the REST API")
    backfill.add_argument("first", metavar="FROM")
    backfill.add_argument("last", metavar="TO")
    backfill.add_argument(
        "--api-url",
        default=os.environ.get("AIRFLOW_API_URL", ""),
        help="a running Airflow (e.g. http://localhost:8080 for docker compose); default: the services 'up' started",
    )
    backfill.add_argument(
        "--facility-cd", default=os.environ.get("FACILITY_CD", ""), help="reload only this facility's rows (9 digits)"
    )
    backfill.add_argument("--username", default=os.environ.get("AIRFLOW_USERNAME", "admin"))
    backfill.add_argument("--password", default="", help="or AIRFLOW_PASSWORD")
    backfill.set_defaults(func=_cmd_backfill)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
