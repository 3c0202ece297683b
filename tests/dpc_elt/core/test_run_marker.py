"""The per-month record of the manifest loaded last: written whole, read back, forgotten, and a broken
record reads as none (the month is then loaded again, which is always safe)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import fsspec
import pytest

from dpc_elt.core import run_marker
from dpc_elt.core.errors import ParameterError

SHA = "a" * 64


def record(sha: str = SHA) -> run_marker.LoadedManifest:
    return run_marker.LoadedManifest("202504", sha, "dpc_elt", "manual__1", datetime(2025, 5, 8, 1, 2, 3, tzinfo=UTC))


def test_the_record_lives_per_month_beside_the_run_marker(tmp_path):
    from types import SimpleNamespace

    cfg = SimpleNamespace(processed_root="s3://b/processed/")
    assert (
        run_marker.loaded_manifest_uri(cfg, "202504")
        == "s3://b/processed/_ops/dpc_elt_loaded_manifests/yyyymm=202504.json"
    )
    assert run_marker.run_marker_uri(cfg).rsplit("/", 1)[0] == "s3://b/processed/_ops"
    with pytest.raises(ParameterError):
        run_marker.loaded_manifest_uri(cfg, "2025-04")


def test_write_read_forget(tmp_path):
    fs = fsspec.filesystem("file")
    path = str(tmp_path / "_ops" / "dpc_elt_loaded_manifests" / "yyyymm=202504.json")
    assert run_marker.read_loaded_manifest(fs, path) is None
    run_marker.write_loaded_manifest(fs, path, record())
    assert run_marker.read_loaded_manifest(fs, path) == record()
    assert json.loads((tmp_path / "_ops" / "dpc_elt_loaded_manifests" / "yyyymm=202504.json").read_text()) == {
        "yyyymm": "202504",
        "manifest_sha256": SHA,
        "dag_id": "dpc_elt",
        "run_id": "manual__1",
        "loaded_at": "2025-05-08T01:02:03+00:00",
    }
    assert not list((tmp_path / "_ops" / "dpc_elt_loaded_manifests").glob("*.partial"))
    run_marker.write_loaded_manifest(fs, path, record("b" * 64))  # replaced whole
    assert run_marker.read_loaded_manifest(fs, path).manifest_sha256 == "b" * 64
    run_marker.forget_loaded_manifest(fs, path)
    assert run_marker.read_loaded_manifest(fs, path) is None
    run_marker.forget_loaded_manifest(fs, path)  # nothing to forget is fine


@pytest.mark.parametrize(
    "content",
    ["{", "[]", json.dumps({**record().to_dict(), "manifest_sha256": "short"}), json.dumps({"yyyymm": "202504"})],
)
def test_an_unreadable_record_counts_as_none(tmp_path, content):
    path = tmp_path / "yyyymm=202504.json"
    path.write_text(content)
    assert run_marker.read_loaded_manifest(fsspec.filesystem("file"), str(path)) is None
