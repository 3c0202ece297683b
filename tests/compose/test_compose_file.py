"""docker-compose.yaml is a valid Compose file and runs the topology the project needs.

Validated three ways: against the Compose Specification JSON Schema (``compose_spec.json``, vendored
from Debian's docker-compose 1.29.2 package, ``/usr/lib/python3/dist-packages/compose/config/``),
by ``docker-compose config`` itself when the binary is installed (``scripts/install_services.sh``
installs it; CI has it), and by the checks below on what the project relies on.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "docker" / "airflow.Dockerfile"
SCHEMA = Path(__file__).with_name("compose_spec.json")

AIRFLOW_COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
AIRFLOW_SERVICES = {*AIRFLOW_COMPONENTS, "airflow-init", "airflow-cli", "dpc-seed"}
LONG_RUNNING = {*AIRFLOW_COMPONENTS, "postgres", "minio"}
MOUNTS = {"./dags": "/opt/airflow/dags", "./plugins": "/opt/airflow/plugins", "./include": "/opt/airflow/include"}
# The only credentials the file may hold: documented local defaults, overridable from .env.
LOCAL_DEFAULTS = {"minioadmin", "airflow", "admin"}
SECRETISH = re.compile(r"PASSWORD|SECRET|_KEY|TOKEN", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def _resolve(value: str) -> str:
    """``${NAME:-default}`` → default, as compose does with NAME unset."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", value)


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    return {key: _resolve(str(value)) for key, value in env.items()}


def _bind_mounts(service: dict) -> dict[str, str]:
    mounts = {}
    for volume in service.get("volumes", []):
        source, _, target = volume.partition(":")
        mounts[source] = target.split(":")[0]
    return mounts


def test_matches_the_compose_specification(compose):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_schema_rejects_what_compose_rejects():
    """The vendored schema is not vacuous: an unknown service key and a bad healthcheck fail it."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft201909Validator(schema)
    assert not validator.is_valid({"services": {"x": {"image": "a", "helthcheck": {}}}})
    assert not validator.is_valid({"services": {"x": {"image": "a", "healthcheck": {"retries": "many"}}}})
    assert validator.is_valid({"services": {"x": {"image": "a", "healthcheck": {"retries": 3}}}})


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose not installed (scripts/install_services.sh)"
)
def test_docker_compose_config_accepts_it(tmp_path):
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "--project-directory", str(REPO), "config"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # no stray .env from the working directory
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr  # e.g. an unset variable without default
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == set(yaml.safe_load(COMPOSE_FILE.read_text())["services"])
    scheduler = resolved["services"]["airflow-scheduler"]
    assert scheduler["environment"]["DPC_RAW_ROOT"] == "s3://dpc-elt/raw"
    targets = {v["target"] if isinstance(v, dict) else v.split(":")[1] for v in scheduler["volumes"]}
    assert targets >= set(MOUNTS.values())


def test_airflow_services_share_image_mounts_and_settings(compose):
    services = compose["services"]
    assert set(services) >= AIRFLOW_SERVICES
    images = {services[name]["image"] for name in AIRFLOW_SERVICES}
    assert len(images) == 1, images
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "docker/airflow.Dockerfile", name
        mounts = _bind_mounts(service)
        for source, target in MOUNTS.items():
            assert mounts.get(source) == target, f"{name} does not mount {source} at {target}"
        env = _environment(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name
        # Components verify each other's tokens: one JWT secret for all.
        assert (
            env["AIRFLOW__API_AUTH__JWT_SECRET"]
            == _environment(services["airflow-scheduler"])["AIRFLOW__API_AUTH__JWT_SECRET"]
        )
    for name, command in AIRFLOW_COMPONENTS.items():
        assert services[name]["command"] == command


def test_dag_points_at_the_local_bucket(compose):
    services = compose["services"]
    bucket = _environment(services["minio-init"])["DPC_LOCAL_BUCKET"]
    assert 'mc mb --ignore-existing "local/$$DPC_LOCAL_BUCKET"' in services["minio-init"]["command"][1]
    for name in AIRFLOW_SERVICES:
        env = _environment(services[name])
        assert env["DPC_BACKEND"] == "embedded"
        assert env["DPC_RAW_ROOT"] == f"s3://{bucket}/raw"
        assert env["DPC_PROCESSED_ROOT"] == f"s3://{bucket}/processed"
        assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"  # botocore/s3fs honour it
        assert env["DPC_DUCKDB_PATH"].startswith("/opt/airflow/dpc-data/")
        assert "dpc-data:/opt/airflow/dpc-data" in services[name]["volumes"]  # the warehouse on a volume
    assert "dpc-data" in compose["volumes"]


def test_healthchecks_and_startup_order(compose):
    services = compose["services"]
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    assert "--fail" in services["airflow-apiserver"]["healthcheck"]["test"]
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "True"
    assert services["minio-init"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["minio-init"] == {"condition": "service_completed_successfully"}, name
        if name != "airflow-init" and name != "dpc-seed":
            assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name


def test_airflow_init_sets_up_what_the_dag_needs(compose):
    script = compose["services"]["airflow-init"]["command"][1]
    assert "airflow db migrate" in script
    # scripts/airflow_init.sh creates the same pool for the in-process runs.
    assert 'airflow pools set dpc_warehouse 1 "' in script
    assert "airflow pools set dpc_warehouse 1" in (REPO / "scripts" / "airflow_init.sh").read_text()
    assert "dbt parse" in script and "/opt/airflow/include/dbt" in script
    assert "/opt/airflow/auth/passwords.json" in script


def test_no_secrets_beyond_local_defaults():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)
    credentials = 0
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if not sep or key.startswith(("#", "-")) or key.endswith("_FILE") or not SECRETISH.search(key):
            continue
        # A credential is ${VARIABLE:-default}: overridable from .env, and the default is obviously local.
        defaults = re.findall(r"\$\{[A-Z_]+:-([^}]*)\}", value)
        assert defaults, f"credential not overridable from .env: {line.strip()}"
        for default in defaults:
            assert default in LOCAL_DEFAULTS or default.startswith("local-only-"), line.strip()
        credentials += 1
    assert credentials >= 5  # POSTGRES/MINIO passwords, JWT and API secrets, the AWS keys: the check saw them
    for variable in re.findall(r"(?<!\$)\$\{[^}]*\}", text):
        assert ":-" in variable, f"{variable} has no default: compose must work without a .env"


def test_image_holds_the_pinned_stack():
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements" / "local.txt").read_text(), re.M)
    assert pinned
    assert re.search(rf"^FROM apache/airflow:{re.escape(pinned.group(1))}-python3\.12$", dockerfile, re.M)
    assert "pip install --no-cache-dir -r /opt/airflow/requirements/local.txt" in dockerfile
    assert "dbt parse" in dockerfile and "target/manifest.json" in dockerfile
    ignore = (DOCKERFILE.parent / "airflow.Dockerfile.dockerignore").read_text(encoding="utf-8")
    assert ignore.splitlines()[1] == "*", "the build context is only what the image copies"
