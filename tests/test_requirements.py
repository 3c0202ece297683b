"""requirements.txt (MWAA) asks only for what the local pinned stack has, at compatible versions."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def test_every_mwaa_requirement_is_pinned_locally_and_compatible():
    pinned = {r.name.lower(): next(iter(r.specifier)).version for r in requirements(REPO / "requirements/local.txt")}
    for requirement in requirements(REPO / "requirements.txt"):
        name = requirement.name.lower()
        assert name in pinned, f"{name} is not in requirements/local.txt"
        assert requirement.specifier.contains(pinned[name]), f"{name}: local pin {pinned[name]} not allowed"


def test_local_stack_has_what_the_user_named():
    names = {r.name.lower() for r in requirements(REPO / "requirements/local.txt")}
    named = {"apache-airflow", "apache-airflow-providers-amazon", "astronomer-cosmos", "dbt-redshift", "dbt-duckdb"}
    assert named | {"jsonschema", "slack-sdk", "duckdb", "apache-airflow-providers-slack"} <= names
    dbt_core = next(r for r in requirements(REPO / "requirements/local.txt") if r.name == "dbt-core")
    assert re.match(r"1\.11\.", next(iter(dbt_core.specifier)).version), "dbt-core 1.12 needs the internet to install"
