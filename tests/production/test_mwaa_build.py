"""The MWAA packaging: scripts/build_mwaa.sh builds and checks the artifacts, the startup script
branches on MWAA_AIRFLOW_COMPONENT, and the constraints file pins what the local stack tests.

``test_the_build_makes_and_checks_every_artifact`` is the slow one (about 25 CPU seconds, 30-50 s wall: dbt parse, a DAG
parse once production is wired, and ``uv pip compile`` against PyPI for Python 3.12 — the only test
here that needs the network). The others are offline and take a second.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "scripts" / "build_mwaa.sh"
# CPU seconds of the build and its children (about 25 s here): wall time varies with the machine's
# load (about 30 s idle, 50 s beside other test runs), CPU time does not.
BUILD_BUDGET_SECONDS = 60


def build(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DPC_", "AIRFLOW__CORE__"))}
    return subprocess.run(
        [str(BUILD), "--out", str(out), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_build_makes_and_checks_every_artifact(tmp_path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = build(tmp_path / "mwaa")
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert cpu < BUILD_BUDGET_SECONDS, f"the build used {cpu:.0f} CPU seconds ({wall:.0f} s wall)"
    assert wall < 3 * BUILD_BUDGET_SECONDS, f"the build took {wall:.0f} s"
    out = tmp_path / "mwaa"

    dags = out / "dags"
    assert (dags / "dpc_elt.py").read_text() == (REPO / "dags" / "dpc_elt.py").read_text()
    assert (dags / "constraints-3.3.1.txt").exists() and (dags / ".airflowignore").read_text() == "include/\n"
    assert (dags / "include/sql/redshift/copy_raw/copy_staged_files.sql").exists()
    manifest = json.loads((dags / "include/dbt/target/manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "redshift"
    assert sorted(p.name for p in (dags / "include/dbt/target").iterdir()) == ["manifest.json"]

    with zipfile.ZipFile(out / "plugins.zip") as archive:
        names = archive.namelist()
        shipped = {".airflowignore", "dpc_elt/backends/redshift/backend.py", "dpc_elt/backends/redshift/operators.py"}
        assert shipped | {"dpc_elt/backends/redshift/s3.py", "dpc_elt/orchestration/steps.py"} <= set(names)
        assert not [n for n in names if n.startswith("dpc_elt/dev/")]  # laptops and tests only
        assert not [n for n in names if "__pycache__" in n or not (n.startswith("dpc_elt/") or n == ".airflowignore")]
        assert {info.date_time for info in archive.infolist()} == {(2020, 1, 1, 0, 0, 0)}  # reproducible

    requirements = (out / "requirements.txt").read_text().splitlines()
    options = [line for line in requirements if line.startswith("-")]
    assert options == ['--constraint "/usr/local/airflow/dags/constraints-3.3.1.txt"']
    startup = (out / "startup.sh").read_text()
    assert "export DPC_S3_BUCKET='dpc-learning-data-dev'" in startup
    assert "export DPC_BACKEND=production" in startup

    assert "plugins.zip imports" in result.stdout
    assert "resolved apache-airflow-providers-amazon==9.34.0" in result.stdout
    assert "resolved apache-airflow-providers-slack==9.10.2" in result.stdout


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("DPC_REDSHIFT_IAM_ROLE_ARN=arn:aws:iam::123456789012:role/x'y", "a shell or SQL literal would change"),
        ("DPC_REDSHIFT_IAM_ROLE_ARN=arn:aws:iam::12345:role/x", "DPC_REDSHIFT_IAM_ROLE_ARN is not valid"),
        ("DPC_S3_BUCKET=Not_A_Bucket", "DPC_S3_BUCKET is not valid"),
        ("AWS_SECRET_ACCESS_KEY=abc", "expected one of"),
    ],
)
def test_a_bad_env_file_stops_the_build_naming_the_setting(tmp_path, line, problem):
    example = (REPO / "mwaa" / "example.env").read_text().splitlines()
    key = line.split("=", 1)[0]
    lines = [entry for entry in example if not entry.startswith(f"{key}=")] + [line]
    env_file = tmp_path / "bad.env"
    env_file.write_text("\n".join(lines) + "\n")
    result = build(tmp_path / "mwaa", "--env", str(env_file), "--no-resolve")
    assert result.returncode != 0 and problem in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "mwaa" / "plugins.zip").exists()


def run_startup(tmp_path: Path, component: str) -> tuple[str, list[str]]:
    """Source mwaa/startup.sh as MWAA does, with a fake python3/pip that record what they are asked."""
    home, bin_dir = tmp_path / "airflow", tmp_path / "bin"
    home.mkdir()
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    fake_pip = f'#!/bin/sh\necho "pip $*" >> {calls}\n[ "$1" = show ] && echo "Version: 1.11.1"\nexit 0\n'
    fake_python = (
        "#!/bin/sh\n"
        f'echo "python3 $*" >> {calls}\n'
        'mkdir -p "$3/bin"\n'
        f"cat > \"$3/bin/pip\" <<'PIP'\n{fake_pip}PIP\n"
        'chmod +x "$3/bin/pip"\n'
    )
    (bin_dir / "python3").write_text(fake_python)
    (bin_dir / "python3").chmod(0o755)
    script = REPO / "mwaa" / "startup.sh"
    shown = subprocess.run(
        ["sh", "-c", f'. "{script}"; echo "$DPC_BACKEND|$DPC_DBT_EXECUTABLE|$DPC_INCLUDE_DIR"'],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "AIRFLOW_HOME": str(home), "MWAA_AIRFLOW_COMPONENT": component},
        capture_output=True,
        text=True,
        check=True,
    )
    return shown.stdout.strip().splitlines()[-1], calls.read_text().splitlines() if calls.exists() else []


def test_the_api_server_skips_the_dbt_virtualenv(tmp_path):
    exported, calls = run_startup(tmp_path, "api-server")
    assert exported == f"production|{tmp_path}/airflow/dbt_venv/bin/dbt|{tmp_path}/airflow/dags/include"
    assert calls == []


@pytest.mark.parametrize("component", ["scheduler", "worker"])
def test_scheduler_and_workers_build_the_dbt_virtualenv(tmp_path, component):
    _, calls = run_startup(tmp_path, component)
    assert calls[0] == f"python3 -m venv {tmp_path}/airflow/dbt_venv"
    assert calls[1] == "pip install --no-cache-dir --quiet dbt-core>=1.11,<1.12 dbt-redshift==1.11.1"


def test_constraints_pin_mwaa_331_and_the_local_versions_of_what_we_add():
    def pins(path: Path) -> dict[str, str]:
        lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
        return {r.name.lower(): str(r.specifier) for r in map(Requirement, filter(None, lines)) if r.specifier}

    constraints = pins(REPO / "mwaa" / "constraints-3.3.1.txt")
    local = pins(REPO / "requirements" / "local.txt")
    mwaa = {
        "apache-airflow": "==3.3.1",
        "apache-airflow-core": "==3.3.1",
        "apache-airflow-providers-amazon": "==9.34.0",
        "apache-airflow-providers-slack": "==9.10.2",
    }
    assert {k: constraints[k] for k in mwaa} == mwaa
    assert constraints["boto3"] == "<1.44,>=1.43"
    ours = set(constraints) - set(mwaa) - {"boto3", "botocore"}
    assert {name: constraints[name] for name in ours} == {name: local[name] for name in ours}
    startup = (REPO / "mwaa" / "startup.sh").read_text()
    assert f'"dbt-redshift{local["dbt-redshift"]}"' in startup  # the dbt virtualenv matches local dbt too
    assert '"dbt-core>=1.11,<1.12"' in startup and local["dbt-core"].startswith("==1.11.")
