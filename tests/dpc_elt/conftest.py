"""Small hand-built DPC fixture files (cp932, TAB, CRLF) and month folders with a manifest.

The helpers compute SHA-256, sizes and record counts on their own (hashlib, len, the number of rows
they were given) so that the code under test is checked against independent numbers.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from dpc_elt.core import formats

FACILITY = "131000123"
YYYYMM = "202504"

_DEFAULTS: dict[str, dict[str, str]] = {
    "y1": {
        "facility_cd": FACILITY,
        "patient_id": "0000000001",
        "admission_date": "20250401",
        "admission_seq_no": "1",
        "summary_no": "0",
        "item_code": "A000010",
        "item_version": "5",
        "item_seq": "1",
        "payload_1": "19500101",
        "payload_2": "1",
    },
    "ef_in": {
        "facility_cd": FACILITY,
        "patient_id": "0000000001",
        "discharge_date": "20250410",
        "admission_date": "20250401",
        "data_category": "11",
        "order_no": "1",
        "detail_no": "000",
        "hospital_master_code": "111000110",
        "receipt_code": "111000110",
        "item_name": "初診料",
        "quantity": "0000001.000",
        "unit_code": "0",
        "detail_points": "291",
        "yen_point_flag": "0",
        "ffs_points": "291",
        "act_points": "291",
        "act_drug_cost": "0",
        "act_material_cost": "0",
        "act_count": "1",
        "insurer_no": "06130013",
        "receipt_type": "1124",
        "performed_date": "20250401",
        "receipt_dept": "01",
        "clinical_dept": "010",
        "doctor_code": "D001",
        "ward_code": "W01",
        "ward_type": "1",
        "inout_flag": "0",
    },
    "d": {
        "facility_cd": FACILITY,
        "patient_id": "0000000001",
        "discharge_date": "20250410",
        "admission_date": "20250401",
        "data_category": "93",
        "order_no": "1",
        "hospital_master_code": "930000000",
        "receipt_code": "930000000",
        "item_name": "ＤＰＣ包括",
        "act_points": "25000",
        "act_drug_cost": "0",
        "act_material_cost": "0",
        "yen_point_flag": "0",
        "act_count": "1",
        "insurer_no": "06130013",
        "receipt_type": "1124",
        "performed_date": "",
        "receipt_dept": "01",
        "clinical_dept": "010",
        "doctor_code": "D001",
        "ward_code": "W01",
        "ward_type": "1",
        "inout_flag": "0",
        "calc_start_date": "20250401",
        "calc_end_date": "20250410",
        "calc_base_date": "20250401",
        "dpc_code": "050130xx99000x",
        "hospital_coefficient": "1.4523",
    },
}


@dataclass
class FixtureFile:
    """One raw file as the helper built it: its name, content and the records it holds."""

    file_type: str
    facility_cd: str
    path: str
    content: bytes
    records: int

    def entry(self) -> dict[str, Any]:
        return {
            "file_type": self.file_type,
            "facility_cd": self.facility_cd,
            "path": self.path,
            "sha256": hashlib.sha256(self.content).hexdigest(),
            "bytes": len(self.content),
            "records": self.records,
        }


@dataclass
class Month:
    raw_root: str
    yyyymm: str
    folder: str
    files: list[FixtureFile] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


class Dpc:
    """Builders for rows, files and month folders (local path or any fsspec URI)."""

    facility = FACILITY
    yyyymm = YYYYMM

    @staticmethod
    def row(file_type: str, **values: str) -> list[str]:
        layout = formats.LAYOUTS[file_type]
        unknown = set(values) - set(layout.columns)
        assert not unknown, f"unknown columns {unknown}"
        merged = {**_DEFAULTS[file_type], **values}
        return [merged.get(c, "") for c in layout.columns]

    @staticmethod
    def header(file_type: str, second: str = "データ識別番号") -> list[str]:
        layout = formats.LAYOUTS[file_type]
        names = list(layout.columns)
        names[0], names[1] = "施設コード", second
        return names

    @staticmethod
    def encode(rows: Sequence[Sequence[str]], *, newline: str = "\r\n", final_newline: bool = True) -> bytes:
        text = newline.join("\t".join(r) for r in rows)
        if rows and final_newline:
            text += newline
        return text.encode("cp932")

    def file(
        self,
        file_type: str,
        rows: Sequence[Sequence[str]],
        *,
        header: bool = True,
        facility_cd: str = FACILITY,
        yyyymm: str = YYYYMM,
        path: str | None = None,
        **encode_kw: Any,
    ) -> FixtureFile:
        lines = [self.header(file_type), *rows] if header else list(rows)
        return FixtureFile(
            file_type=file_type,
            facility_cd=facility_cd,
            path=path or formats.LAYOUTS[file_type].file_name(facility_cd, yyyymm),
            content=self.encode(lines, **encode_kw),
            records=len(rows),
        )

    def default_files(self, yyyymm: str = YYYYMM) -> list[FixtureFile]:
        y1_rows = [
            self.row("y1"),
            self.row("y1", item_code="A000030", payload_1="20250410", payload_2="1"),
            self.row("y1", item_code="A006010", payload_1="", payload_2="I509", payload_9="心不全"),
        ]
        ef_rows = [self.row("ef_in"), self.row("ef_in", order_no="2", item_name="ｶﾞｰｾﾞ", performed_date="")]
        d_rows = [self.row("d")]
        return [
            self.file("y1", y1_rows, yyyymm=yyyymm),
            self.file("ef_in", ef_rows, yyyymm=yyyymm),
            self.file("d", d_rows, yyyymm=yyyymm, header=False),
        ]

    @staticmethod
    def manifest(yyyymm: str, files: Sequence[FixtureFile]) -> dict[str, Any]:
        return {
            "manifest_version": 1,
            "yyyymm": yyyymm,
            "created_at": "2025-05-08T09:00:00+09:00",
            "files": [f.entry() for f in files],
        }

    @staticmethod
    def put(uri: str, data: bytes) -> None:
        from fsspec.core import url_to_fs

        fs, path = url_to_fs(uri)
        parent = path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        fs.pipe_file(path, data)

    def write_manifest(self, month: Month, manifest: dict[str, Any] | str | bytes) -> None:
        if isinstance(manifest, dict):
            data = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
        elif isinstance(manifest, str):
            data = manifest.encode("utf-8")
        else:
            data = manifest
        self.put(f"{month.folder}/_manifest.json", data)

    def month(
        self,
        raw_root: str,
        yyyymm: str = YYYYMM,
        files: Sequence[FixtureFile] | None = None,
        *,
        manifest: bool = True,
    ) -> Month:
        files = list(self.default_files(yyyymm) if files is None else files)
        folder = f"{raw_root.rstrip('/')}/yyyymm={yyyymm}"
        month = Month(raw_root=raw_root, yyyymm=yyyymm, folder=folder, files=files)
        for f in files:
            self.put(f"{folder}/{f.path}", f.content)
        month.manifest = self.manifest(yyyymm, files)
        if manifest:
            self.write_manifest(month, month.manifest)
        return month


@pytest.fixture
def dpc() -> Dpc:
    return Dpc()


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A fresh ``memory://`` raw root, removed afterwards (the memory store is process-wide)."""
    import fsspec

    root = f"memory://dpc-test-{uuid.uuid4().hex}/raw"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)
