"""All configuration in one place, read lazily from ``DPC_*`` environment variables.

With no variable set, everything points at the embedded default under ``<repo>/data``. Secrets
never live here: Slack and AWS credentials come from Airflow Connections named below.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
# On MWAA the package runs from plugins.zip and include/ ships in the dags folder: mwaa/startup.sh
# exports DPC_INCLUDE_DIR=/usr/local/airflow/dags/include.
INCLUDE_DIR = Path(os.environ.get("DPC_INCLUDE_DIR") or REPO_ROOT / "include")
SQL_DIR = INCLUDE_DIR / "sql"
DBT_PROJECT_DIR = INCLUDE_DIR / "dbt"
ASL_PATH = INCLUDE_DIR / "asl" / "dpc_elt.asl.json"
MANIFEST_SCHEMA_PATH = INCLUDE_DIR / "schemas" / "manifest.schema.json"

# DPC_BACKEND: DuckDB on local files (or any fsspec URI), or S3 + Redshift Serverless through the amazon
# provider. dpc_elt.backends.get_backend() is the one place that turns the name into an implementation.
EMBEDDED = "embedded"
PRODUCTION = "production"
BACKENDS = (EMBEDDED, PRODUCTION)

# Schemas the pipeline writes; identifiers in SQL templates come only from these allow-lists.
RAW_SCHEMA = "raw"
STAGE_SCHEMA = "stage"
MART_SCHEMA = "mart"
REF_SCHEMA = "ref"
STAGE_TABLES = ("stg_dpc__y1_cases", "stg_dpc__y1_segments", "stg_dpc__ef_in_stays", "stg_dpc__d")
SUMMARY_TABLE = "fact_case_summary"
EXPORT_TABLES = (SUMMARY_TABLE,)

WAREHOUSE_POOL = "dpc_warehouse"


@dataclass(frozen=True)
class Settings:
    backend: str
    environment: str
    raw_root: str
    processed_root: str
    duckdb_path: str
    duckdb_memory_limit: str
    outbox_path: str
    work_dir: str
    slack_conn_id: str
    slack_channel: str
    manifest_poke_seconds: int
    dbt_executable_path: str
    # Production backend (S3 + Redshift Serverless); dpc_elt.backends.redshift validates them.
    s3_bucket: str
    redshift_workgroup: str
    redshift_database: str
    redshift_iam_role_arn: str
    aws_conn_id: str
    sns_topic_arn: str
    # Event-driven start (production): the SQS queue that receives the raw bucket's ObjectCreated events
    # for ``_manifest.json``. Empty = the 03:00 JST schedule alone (embedded default, local).
    manifest_queue_url: str = ""
    # dbt's Redshift endpoint (profiles.yml reads the same variables); OpenLineage names tables by it.
    redshift_host: str = ""
    redshift_port: int = 5439


# DuckDB's own default is 80 % of RAM, so its buffer pool grew with the month (2.2 GiB at M, 7.7 GiB
# at L in docs/performance.md). Capped, a month of any size runs in the same memory and spills to
# <warehouse>.tmp/ beyond it; raise it to trade memory for speed. profiles.yml has the same default.
DEFAULT_DUCKDB_MEMORY_LIMIT = "1GB"
_MEMORY_LIMIT = re.compile(r"[0-9]+(\.[0-9]+)? ?([KMGT]i?B)")
# A standard SQS queue URL (S3 event notifications cannot target FIFO queues): scheme, host (an
# endpoint such as moto's may carry a port), the 12-digit account and the queue name.
MANIFEST_QUEUE_URL_PATTERN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[0-9]{12}/[A-Za-z0-9_-]{1,80}")


def _data_dir() -> Path:
    return Path(os.environ.get("DPC_DATA_DIR", REPO_ROOT / "data"))


@cache
def get_settings() -> Settings:
    """Settings from the environment; cached, call ``get_settings.cache_clear()`` in tests."""
    data = _data_dir()
    backend = os.environ.get("DPC_BACKEND", EMBEDDED)
    if backend not in BACKENDS:
        raise ValueError(f"DPC_BACKEND must be one of {sorted(BACKENDS)}, got {backend!r}")
    bucket = os.environ.get("DPC_S3_BUCKET", "")
    # Production lands and exports in the bucket (data contract §2: <raw_root> is s3://<bucket>/raw).
    s3_root = f"s3://{bucket}" if backend == PRODUCTION and bucket else ""
    raw_root = os.environ.get("DPC_RAW_ROOT", f"{s3_root}/raw" if s3_root else str(data / "raw"))
    return Settings(
        backend=backend,
        environment=os.environ.get("DPC_ENVIRONMENT", "local"),
        raw_root=raw_root,
        processed_root=os.environ.get(
            "DPC_PROCESSED_ROOT", f"{s3_root}/processed" if s3_root else str(data / "processed")
        ),
        duckdb_path=os.environ.get("DPC_DUCKDB_PATH", str(data / "warehouse" / "dpc.duckdb")),
        duckdb_memory_limit=_memory_limit(os.environ.get("DPC_DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT)),
        outbox_path=os.environ.get("DPC_OUTBOX_PATH", str(data / "outbox" / "notifications.jsonl")),
        work_dir=os.environ.get("DPC_WORK_DIR", str(data / "work")),
        slack_conn_id=os.environ.get("DPC_SLACK_CONN_ID", ""),
        slack_channel=os.environ.get("DPC_SLACK_CHANNEL", "#dpc-alerts"),
        manifest_poke_seconds=int(os.environ.get("DPC_MANIFEST_POKE_SECONDS", "60")),
        dbt_executable_path=os.environ.get("DPC_DBT_EXECUTABLE", ""),
        s3_bucket=bucket,
        redshift_workgroup=os.environ.get("DPC_REDSHIFT_WORKGROUP", "dpc-elt"),
        redshift_database=os.environ.get("DPC_REDSHIFT_DATABASE", "dpc"),
        redshift_iam_role_arn=os.environ.get("DPC_REDSHIFT_IAM_ROLE_ARN", ""),
        aws_conn_id=os.environ.get("DPC_AWS_CONN_ID", "aws_default"),
        sns_topic_arn=os.environ.get("DPC_SNS_TOPIC_ARN", ""),
        manifest_queue_url=_manifest_queue_url(os.environ.get("DPC_MANIFEST_QUEUE_URL", ""), raw_root),
        redshift_host=os.environ.get("DPC_REDSHIFT_HOST", ""),
        redshift_port=int(os.environ.get("DPC_REDSHIFT_PORT") or 5439),
    )


def _memory_limit(value: str) -> str:
    """A DuckDB memory_limit such as ``1GB`` or ``512MiB``; checked here because it is written into SQL."""
    if not _MEMORY_LIMIT.fullmatch(value.strip()):
        raise ValueError(f"DPC_DUCKDB_MEMORY_LIMIT must be a size such as 1GB or 512MiB, got {value!r}")
    return value.strip()


def _manifest_queue_url(value: str, raw_root: str) -> str:
    """``DPC_MANIFEST_QUEUE_URL``, checked when the DAG is parsed (no network): a standard SQS queue URL,
    and a raw root on S3 — the queue carries the S3 event notifications of that bucket."""
    url = value.strip()
    if not url:
        return ""
    if not MANIFEST_QUEUE_URL_PATTERN.fullmatch(url):
        raise ValueError(
            "DPC_MANIFEST_QUEUE_URL must be a standard SQS queue URL such as "
            f"https://sqs.ap-northeast-1.amazonaws.com/123456789012/dpc-elt-manifests, got {url!r}"
        )
    if not raw_root.startswith("s3://"):
        raise ValueError(
            "DPC_MANIFEST_QUEUE_URL needs the raw root on S3 (DPC_S3_BUCKET on the production backend, or "
            f"DPC_RAW_ROOT=s3://…): the queue carries that bucket's S3 events, the raw root is {raw_root!r}"
        )
    return url
