"""Names of the datasets a step reads and writes, for OpenLineage (apache-airflow-providers-openlineage):
``(namespace, name)`` pairs following OpenLineage's naming — ``s3://<bucket>`` and the key for S3,
``file`` and the absolute path for a local file. Warehouse tables are named by the backend
(``Backend.table_dataset``), the way Cosmos names the dbt models' tables, so the step lineage and the dbt
lineage join up. Names and paths only: never a value."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DatasetName = tuple[str, str]  # (namespace, name)


def storage_dataset(uri: str) -> DatasetName:
    """A file or folder under the raw or processed root (local path or fsspec URI)."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return "file", os.path.abspath(parts.path if parts.scheme else uri)
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


@dataclass(frozen=True)
class StepLineage:
    """What one run of a step read and wrote."""

    inputs: list[DatasetName] = field(default_factory=list)
    outputs: list[DatasetName] = field(default_factory=list)
