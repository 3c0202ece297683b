"""Helpers shared by the production tests: a landed month on (moto) S3, the production DAG part, the
load batch written out by hand, and the trigger events the provider's RedshiftDataTrigger emits."""

from __future__ import annotations

import json
from typing import Any

import pendulum

from dpc_elt.core import formats
from dpc_elt.core.params import param_schemas
from tests.dpc_elt.conftest import Dpc, FixtureFile
from tests.production.conftest import BUCKET, ROLE_ARN

YYYYMM = "202504"
STAGING = f"s3://{BUCKET}/staging/yyyymm={YYYYMM}"
PARAMS = [{"name": "yyyymm", "value": YYYYMM}]


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
    """A DAG holding validate_manifest and copy_raw as the DAG file builds them, on the production backend."""
    from airflow.sdk import DAG, Param

    from dpc_elt.orchestration import steps

    with DAG(
        dag_id="dpc_elt_production_part",
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Tokyo"),
        params={name: Param(**schema) for name, schema in param_schemas().items()},
    ) as dag:
        steps.validate_manifest() >> steps.copy_raw()
    return dag


def file_type_statements(file_type: str, with_copy: bool = True) -> list[str]:
    """One file type's part of the load batch, written out by hand from the issue: create the raw table
    if missing, DELETE the month (bound), COPY the staged objects with STATUPDATE ON."""
    layout = formats.LAYOUTS[file_type]
    table = f'"raw"."{layout.raw_table}"'
    columns = ",\n".join(f"    {c} varchar(1536)" for c in layout.columns)
    create = (
        f"create table if not exists {table} (\n    yyyymm varchar(6) not null,\n"
        f"    source_file varchar(64) not null,\n    line_no integer not null,\n{columns}\n)\n"
        "diststyle auto\nsortkey (yyyymm)"
    )
    statements = ['create schema if not exists "raw"', create, f"delete from {table} where yyyymm = :yyyymm"]
    if with_copy:
        statements.append(
            f"copy {table} (yyyymm, source_file, line_no, {', '.join(layout.columns)})\n"
            f"from '{STAGING}/_copy_{file_type}.manifest'\n"
            f"iam_role '{ROLE_ARN}'\n"
            "manifest\ndelimiter '\\t'\nnull as '\\0'\nencoding utf8\nmaxerror 0\ncompupdate off\nstatupdate on"
        )
    return statements


def load_statements(without: tuple[str, ...] = ()) -> list[str]:
    """The month's whole load batch: every file type's part, in the order y1, ef_in, d."""
    return [s for t in formats.FILE_TYPES for s in file_type_statements(t, with_copy=t not in without)]


def success_event(statement_id: str) -> dict[str, Any]:
    """What RedshiftDataTrigger yields when the statement finished."""
    return {"status": "success", "statement_id": statement_id}


def failure_event(statement_id: str, status: str = "FAILED") -> dict[str, Any]:
    """What RedshiftDataTrigger yields when the statement failed: its message quotes the whole
    DescribeStatement response — here a stand-in value that must never reach a log or an error."""
    message = f"Statement {statement_id} terminated with status {status}. Response details: {PATIENT_VALUE}"
    return {"status": "error", "statement_id": statement_id, "message": message, "type": status}


# A value that only ever appears in the database's own error text: no log line or error may hold it.
PATIENT_VALUE = "0000000042-山田太郎"

SCHEMAS = [
    {"name": "mart_schema", "value": "mart"},
    {"name": "raw_schema", "value": "raw"},
    {"name": "stage_schema", "value": "stage"},
]


def expect_existing_tables(stub: Any, tables: list[tuple[str, str]]) -> None:
    """The quick information_schema read that steps make before touching tables that may not exist."""
    from botocore.stub import ANY

    sid = stub.expect_statement(ANY, SCHEMAS)
    stub.expect_describe(sid)
    stub.expect_result(sid, [list(t) for t in tables])
