"""Helpers shared by the production tests: a landed month on (moto) S3 and the production DAG part."""

from __future__ import annotations

import json
from typing import Any

import pendulum

from dpc_elt.params import param_schemas
from tests.dpc_elt.conftest import Dpc, FixtureFile
from tests.production.conftest import BUCKET

YYYYMM = "202504"


def land_month(fs: Any, files: list[FixtureFile] | None = None, yyyymm: str = YYYYMM) -> dict[str, Any]:
    """Put the files and their manifest under s3://<bucket>/raw/yyyymm=<M>/ (independent numbers:
    the Dpc helper computes sizes, hashes and counts itself)."""
    dpc = Dpc()
    files = dpc.default_files(yyyymm) if files is None else files
    folder = f"{BUCKET}/raw/yyyymm={yyyymm}"
    for item in files:
        fs.pipe_file(f"{folder}/{item.path}", item.content)
    manifest = dpc.manifest(yyyymm, files)
    fs.pipe_file(f"{folder}/_manifest.json", json.dumps(manifest, ensure_ascii=False).encode("utf-8"))
    return manifest


def production_dag():
    """A DAG holding the production validate_manifest and copy_raw groups (as steps.py builds them)."""
    from airflow.sdk import DAG, Param

    from dpc_elt import production, steps

    with DAG(
        dag_id="dpc_elt_production_part",
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Tokyo"),
        params={name: Param(**schema) for name, schema in param_schemas().items()},
    ) as dag:
        steps.validate_manifest() >> production.copy_raw()
    return dag
