"""The contract of every backend (dpc_elt.backends.base), tested once against both implementations:
the embedded one on a real DuckDB file, the production one through botocore's Stubber (Data API) and
moto (S3). Here because the production fixtures live in this folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dpc_elt.backends.base import Pending
from dpc_elt.core import settings
from dpc_elt.core.errors import RawFileError
from tests.dpc_elt.conftest import Dpc
from tests.production.support import PARAMS, YYYYMM, land_month, load_statements, success_event

D_FILE = "Dn_131000123_2504.txt"
RECORDS = {"y1": 3, "ef_in": 2, "d": 3}


def delivery(bad_d_line: bool = False) -> list[Any]:
    """The default month with three D lines (no header); optionally the second one a field short."""
    dpc = Dpc()
    files = dpc.default_files()
    d_rows = [dpc.row("d", order_no=str(n)) for n in (1, 2, 3)]
    if bad_d_line:
        d_rows[1] = d_rows[1][:-1]
    files[2] = dpc.file("d", d_rows, header=False)
    return files


class Embedded:
    def __init__(self, tmp_path: Path) -> None:
        data = tmp_path / "data"
        cfg = dataclasses.replace(
            settings.get_settings(),
            backend=settings.EMBEDDED,
            raw_root=str(data / "raw"),
            processed_root=str(data / "processed"),
            duckdb_path=str(data / "warehouse" / "dpc.duckdb"),
            work_dir=str(data / "work"),
        )
        from dpc_elt.backends.embedded import EmbeddedBackend

        self.backend = EmbeddedBackend(cfg)
        self.cfg = cfg

    def deliver(self, files: list[Any]) -> None:
        dpc = Dpc()
        folder = Path(self.cfg.raw_root) / f"yyyymm={YYYYMM}"
        folder.mkdir(parents=True, exist_ok=True)
        for item in files:
            (folder / item.path).write_bytes(item.content)
        (folder / "_manifest.json").write_text(json.dumps(dpc.manifest(YYYYMM, files), ensure_ascii=False))

    def load(self) -> dict[str, int]:
        return self.backend.load_month(YYYYMM, self.backend.validate_month(YYYYMM))

    def changes(self) -> Any:
        """The raw rows of every month (what a load may change)."""
        path = Path(self.cfg.duckdb_path)
        if not path.exists():
            return {}
        with duckdb.connect(str(path), read_only=True) as con:
            tables = {t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()}
            return {
                t: con.execute(f'select * from "raw".{t} order by source_file, line_no').fetchall()
                for t in ("y1", "ef_in", "d")
                if t in tables
            }


class Production:
    def __init__(self, backend: Any, data_api: Any, s3fs_: Any) -> None:
        self.backend, self.data_api, self.s3fs = backend, data_api, s3fs_

    def deliver(self, files: list[Any]) -> None:
        land_month(self.s3fs, files)

    def load(self) -> dict[str, int]:
        manifest = self.backend.validate_month(YYYYMM)
        sid = self.data_api.expect_batch(load_statements(), PARAMS, f"dpc_elt.copy_raw.{YYYYMM}")
        pending = self.backend.load_month(YYYYMM, manifest)
        assert isinstance(pending, Pending)
        subs = [{"Status": "FINISHED"} for _ in range(12)]
        for position, file_type in ((4, "y1"), (8, "ef_in"), (12, "d")):
            subs[position - 1] = {"Status": "FINISHED", "ResultRows": RECORDS[file_type]}
        self.data_api.expect_describe(sid, subs=subs)
        return self.backend.resume(pending.state, success_event(sid))

    def changes(self) -> Any:
        """What was sent to Redshift (a load changes nothing that it did not send)."""
        return [request["operation"] for request in self.data_api.sent]


@pytest.fixture(params=[settings.EMBEDDED, settings.PRODUCTION])
def harness(request, tmp_path):
    if request.param == settings.EMBEDDED:
        return Embedded(tmp_path)
    return Production(
        request.getfixturevalue("backend"), request.getfixturevalue("data_api"), request.getfixturevalue("s3fs_")
    )


def test_load_month_replaces_the_month_with_every_data_line(harness):
    harness.deliver(delivery())
    assert harness.load() == RECORDS
    assert sum(RECORDS.values()) == sum(f.records for f in delivery())


def test_load_month_is_all_or_nothing_and_names_file_line_and_rule(harness):
    """A corrected delivery of a loaded month whose last file type has a bad line: refused whole, naming
    file, line and rule; the month stays as the first load left it (embedded: the same rows; production:
    not one more statement sent)."""
    harness.deliver(delivery())
    harness.load()
    before = harness.changes()
    harness.deliver(delivery(bad_d_line=True))
    with pytest.raises(RawFileError) as raised:
        harness.load()
    error = raised.value
    assert (error.file, error.line, error.rule) == (D_FILE, 2, "wrong number of fields")
    assert before and harness.changes() == before
