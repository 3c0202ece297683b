"""Dataset names for OpenLineage: OpenLineage's naming for files and S3, and each backend's tables named
as Cosmos names dbt's (so the steps' lineage and dbt's join up)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from dpc_elt.backends.embedded import EmbeddedBackend
from dpc_elt.core.lineage import StepLineage, storage_dataset


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://dpc-data-prod/raw/yyyymm=202504/FF1.txt", ("s3://dpc-data-prod", "raw/yyyymm=202504/FF1.txt")),
        ("/srv/dpc/raw/yyyymm=202504/Dn.txt", ("file", "/srv/dpc/raw/yyyymm=202504/Dn.txt")),
        ("file:///srv/dpc/processed", ("file", "/srv/dpc/processed")),
        ("memory://dpc/raw/x.txt", ("memory://dpc", "raw/x.txt")),
    ],
)
def test_storage_names_follow_openlineage(uri, expected):
    assert storage_dataset(uri) == expected


def test_a_relative_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage_dataset("data/raw") == ("file", os.path.join(str(tmp_path), "data", "raw"))


def test_embedded_tables_are_named_as_dbt_duckdb_names_them(tmp_path):
    backend = EmbeddedBackend(SimpleNamespace(duckdb_path=str(tmp_path / "warehouse" / "dpc.duckdb")))
    namespace, name = backend.table_dataset("raw", "y1")
    assert namespace == f"duckdb://{(tmp_path / 'warehouse' / 'dpc.duckdb').resolve()}"
    assert name == "dpc.raw.y1"


def test_a_step_without_lineage_reports_none():
    from dpc_elt.orchestration.operators import BackendStepOperator

    class Quiet(BackendStepOperator):
        def start(self, context, backend):
            return {}

    lineage = Quiet(task_id="quiet").get_openlineage_facets_on_complete(None)
    assert (lineage.inputs, lineage.outputs) == ([], [])
    assert StepLineage() == StepLineage([], [])
