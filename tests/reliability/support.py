"""Helpers of the reliability suite: data, the pipeline's steps at function level and fingerprints
(the contract §3 oracle they are compared with is tests/contract.py).

The pipeline helpers call exactly what the DAG's tasks call, in the DAG's order:
``manifest.validate_month`` → ``embedded.load_raw_month`` → dbt (staging, then seeds, intermediate
and marts, the month as the var ``yyyymm``) → ``embedded.compute_readmit`` →
``export`` (``embedded.export_months`` + ``quality_report.write_report``).
dbt runs in-process through ``dbtRunner`` with a manifest parsed once per session (each run then
takes about a second instead of a full parse).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from dpc_elt.backends import embedded
from dpc_elt.core import settings
from dpc_elt.core.manifest import validate_month
from dpc_elt.dev.synthetic import Stay, write_months
from dpc_elt.ops import quality_report
from tests.contract import CASE_KEY, summary_by_key

FAC_A = "131000123"
FAC_B = "271000456"
SECRET_DISEASE_NAME = "秘匿試験病名"  # a y1 free-text value (A006010 p9) that must never leave the warehouse
LINEAGE_KEY = ("yyyymm", "source_file", "line_no")
SCHEMAS = (settings.RAW_SCHEMA, settings.STAGE_SCHEMA, settings.MART_SCHEMA, settings.REF_SCHEMA)


# ------------------------------------------------------------------------------------------ data


def scenario_stays() -> list[Stay]:
    """Two months (202503, 202504), two facilities, every §3 situation, distinctive patient ids."""

    def stay(fac: str, pid: str, adm: str, dis: str | None, **kw: Any) -> Stay:
        return Stay(
            fac,
            pid,
            date.fromisoformat(adm),
            discharge_date=date.fromisoformat(dis) if dis else None,
            disease_name=SECRET_DISEASE_NAME,
            **kw,
        )

    return [
        # readmitted after 4 days (unplanned), then after 25 days in the next month (emergency)
        stay(FAC_A, "PT00000001", "2025-03-02", "2025-03-06"),
        stay(FAC_A, "PT00000001", "2025-03-10", "2025-03-14", admission_type="200"),
        stay(FAC_A, "PT00000001", "2025-04-08", "2025-04-12", admission_type="301"),
        # across the month end, two wards (y1 segment rows)
        stay(FAC_A, "PT00000002", "2025-03-25", "2025-04-03", wards=("3A", "ICU")),
        # a same-day discharge, then admission_seq_no 2 on the same date
        stay(FAC_A, "PT00000003", "2025-04-01", "2025-04-01"),
        stay(FAC_A, "PT00000003", "2025-04-01", "2025-04-05", admission_seq_no=2, admission_type="302"),
        # still admitted: EF and D rows without a y1 case
        stay(FAC_A, "PT00000004", "2025-04-20", None),
        # one patient id at two facilities: never linked
        stay(FAC_A, "PT00000005", "2025-03-05", "2025-03-08"),
        stay(FAC_B, "PT00000005", "2025-03-12", "2025-03-15"),
        # a death
        stay(FAC_B, "PT00000006", "2025-03-01", "2025-03-20", discharge_outcome="6"),
        # 21 days between two stays in one month, the second still open
        stay(FAC_B, "PT00000007", "2025-04-02", "2025-04-09"),
        stay(FAC_B, "PT00000007", "2025-04-30", None),
    ]


SCENARIO_MONTHS = ("202503", "202504")


def scenario_patient_ids() -> set[str]:
    return {s.patient_id for s in scenario_stays()}


def write_scenario(raw_root: str | Path, months: Sequence[str] = SCENARIO_MONTHS) -> None:
    write_months(scenario_stays(), list(months), raw_root, ef_rows_per_day=2)


def cfg_under(base: Path) -> settings.Settings:
    """Settings whose every path is under ``base`` (function-level tests need no environment)."""
    return dataclasses.replace(
        settings.get_settings(),
        raw_root=str(base / "raw"),
        processed_root=str(base / "processed"),
        duckdb_path=str(base / "warehouse" / "dpc.duckdb"),
        work_dir=str(base / "work"),
        outbox_path=str(base / "outbox" / "notifications.jsonl"),
    )


def month_dir(cfg: settings.Settings, yyyymm: str) -> Path:
    return Path(cfg.raw_root) / f"yyyymm={yyyymm}"


def count_records(data: bytes) -> int:
    """Data lines of a file, counted here without the package: lines, minus a header first line."""
    if not data:
        return 0
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    first = data.split(b"\n", 1)[0].rstrip(b"\r").split(b"\t")
    header = len(first) > 1 and first[1].decode("cp932", "replace") in ("データ識別番号", "ﾃﾞｰﾀ識別番号")
    return lines - int(header)


def manifest_entry(file_type: str, facility_cd: str, path: str, data: bytes) -> dict[str, Any]:
    return {
        "file_type": file_type,
        "facility_cd": facility_cd,
        "path": path,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "records": count_records(data),
    }


def read_manifest(cfg: settings.Settings, yyyymm: str) -> dict[str, Any]:
    return json.loads((month_dir(cfg, yyyymm) / "_manifest.json").read_text(encoding="utf-8"))


def write_manifest(cfg: settings.Settings, yyyymm: str, manifest: dict[str, Any] | bytes) -> None:
    data = manifest if isinstance(manifest, bytes) else json.dumps(manifest, ensure_ascii=False).encode()
    (month_dir(cfg, yyyymm) / "_manifest.json").write_bytes(data)


def rewrite_file(cfg: settings.Settings, yyyymm: str, prefix: str, edit) -> str:
    """Replace one listed file by ``edit(bytes)`` and keep its manifest entry consistent with it, so
    that only the load can object. Returns the file name."""
    manifest = read_manifest(cfg, yyyymm)
    entry = next(f for f in manifest["files"] if f["path"].startswith(prefix))
    path = month_dir(cfg, yyyymm) / entry["path"]
    data = edit(path.read_bytes())
    path.write_bytes(data)
    entry.update(manifest_entry(entry["file_type"], entry["facility_cd"], entry["path"], data))
    write_manifest(cfg, yyyymm, manifest)
    return entry["path"]


def edit_line(number: int, edit) -> Any:
    """An ``edit`` for :func:`rewrite_file` that changes physical line ``number`` (1-based, CRLF)."""

    def apply(data: bytes) -> bytes:
        lines = data.split(b"\r\n")
        lines[number - 1] = edit(lines[number - 1])
        return b"\r\n".join(lines)

    return apply


# ------------------------------------------------------------------------------------------- dbt


class Dbt:
    """dbt in-process with a manifest parsed once; ``target/`` and ``logs/`` kept out of the project."""

    def __init__(self, work_dir: Path) -> None:
        from dbt.cli.main import dbtRunner

        self.work_dir = work_dir
        # dbt-duckdb names the database after the file's stem, and the parsed manifest keeps that name:
        # parse against a file named like every warehouse the tests use (cfg_under: dpc.duckdb).
        with _env(DPC_DUCKDB_PATH=str(work_dir / "parse" / "dpc.duckdb")):
            result = dbtRunner().invoke(["parse", *self._common()])
        assert result.success, result.exception
        self.manifest = result.result

    def _common(self) -> list[str]:
        project = str(settings.DBT_PROJECT_DIR)
        return [
            "--project-dir",
            project,
            "--profiles-dir",
            project,
            "--target",
            "duckdb",
            "--target-path",
            str(self.work_dir / "target"),
            "--log-path",
            str(self.work_dir / "logs"),
            "--quiet",
        ]

    def invoke(self, cfg: settings.Settings, *args: str, month: str = "", facility: str = ""):
        """One dbt command; ``month`` and ``facility`` are DPC_YYYYMM and DPC_FACILITY_CD as the DAG's
        tasks set them ("" = all months, the whole month)."""
        from dbt.cli.main import dbtRunner

        Path(cfg.duckdb_path).parent.mkdir(parents=True, exist_ok=True)
        with _env(DPC_DUCKDB_PATH=cfg.duckdb_path, DPC_YYYYMM=month, DPC_FACILITY_CD=facility):
            return dbtRunner(manifest=self.manifest).invoke([*args, *self._common()])

    def build_month(self, cfg: settings.Settings, yyyymm: str, facility: str = "") -> None:
        """build_stage then build_mart as one ``dbt run`` (dbt runs staging before what refs it) for the
        month (or one facility's rows of it); the static seeds are loaded once per warehouse."""
        with connect(cfg) as con:
            seeded = con.execute(
                "select count(*) from information_schema.schemata where schema_name = 'ref'"
            ).fetchone()
        if not seeded[0]:
            result = self.invoke(cfg, "seed", month=yyyymm)
            assert result.success, result.exception
        result = self.invoke(cfg, "run", month=yyyymm, facility=facility)
        assert result.success, result.exception

    def test_month(self, cfg: settings.Settings, yyyymm: str) -> dict[str, str]:
        result = self.invoke(cfg, "test", month=yyyymm)
        return {r.node.name: str(r.status) for r in (result.result or [])}


class _env:
    def __init__(self, **values: str) -> None:
        self.values = values

    def __enter__(self) -> None:
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc: object) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -------------------------------------------------------------------------------------- pipeline


def load_raw(cfg: settings.Settings, yyyymm: str, facility_cd: str | None = None) -> dict[str, int]:
    """validate_manifest + copy_raw (with ``facility_cd``: a one-facility reload)."""
    manifest = validate_month(cfg.raw_root, yyyymm, facility_cd=facility_cd)
    return embedded.EmbeddedBackend(cfg).load_month(yyyymm, manifest)


def pipeline_month(cfg: settings.Settings, dbt: Dbt, yyyymm: str, facility_cd: str | None = None) -> list[str]:
    """One month (or one facility's rows of it) through every step, in the DAG's order; returns the
    months exported."""
    load_raw(cfg, yyyymm, facility_cd)
    dbt.build_month(cfg, yyyymm, facility_cd or "")
    changed = embedded.EmbeddedBackend(cfg).compute_readmit(yyyymm, facility_cd)
    months = sorted(set(changed) | {yyyymm})  # what steps.export_parquet passes
    export(cfg, months)
    return months


def export(cfg: settings.Settings, months: Sequence[str]) -> list[dict[str, Any]]:
    """What steps.export_parquet does: export the months, then write each one's quality report."""
    written = embedded.EmbeddedBackend(cfg).export_months(months)
    for month in written:
        quality_report.write_report(month["yyyymm"], cfg)
    return written


# ----------------------------------------------------------------------------------- fingerprints


def connect(cfg: settings.Settings) -> duckdb.DuckDBPyConnection:
    """Same configuration as dbt-duckdb and embedded.connect (no read_only: one instance per file)."""
    return duckdb.connect(cfg.duckdb_path)


def tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    rows = con.execute(
        "select table_schema, table_name, table_type from information_schema.tables "
        "where table_schema in (?, ?, ?, ?) order by 1, 2",
        list(SCHEMAS),
    ).fetchall()
    return [(s, t, k) for s, t, k in rows]


def fingerprint(cfg: settings.Settings) -> dict[str, tuple[int, str]]:
    """Every raw, stage, mart and ref table and view: row count and a digest of its sorted rows."""
    out: dict[str, tuple[int, str]] = {}
    if not Path(cfg.duckdb_path).exists():
        return out
    with connect(cfg) as con:
        for schema, table, _ in tables(con):
            rows = con.execute(f'select * from "{schema}"."{table}" order by all').fetchall()
            out[f"{schema}.{table}"] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return out


def fingerprint_without(cfg: settings.Settings, yyyymm: str) -> dict[str, tuple[int, str]]:
    """Like :func:`fingerprint`, over the rows of every *other* month (tables with a yyyymm column)."""
    out: dict[str, tuple[int, str]] = {}
    with connect(cfg) as con:
        for schema, table, _ in tables(con):
            columns = [r[0] for r in con.execute(f'describe "{schema}"."{table}"').fetchall()]
            if "yyyymm" not in columns:
                continue
            rows = con.execute(
                f'select * from "{schema}"."{table}" where yyyymm <> ? order by all', [yyyymm]
            ).fetchall()
            out[f"{schema}.{table}"] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return out


def duplicates(cfg: settings.Settings) -> dict[str, int]:
    """Duplicate rows per table: whole rows everywhere, lineage keys in raw and stage line tables,
    case keys in the case tables. Empty when there is none."""
    found: dict[str, int] = {}
    with connect(cfg) as con:
        for schema, table, _ in tables(con):
            name = f'"{schema}"."{table}"'
            columns = {r[0] for r in con.execute(f"describe {name}").fetchall()}
            keys: list[tuple[str, ...]] = [("*",)]
            if set(LINEAGE_KEY) <= columns and table != "stg_dpc__y1_cases":
                keys.append(LINEAGE_KEY)
            if table in ("stg_dpc__y1_cases",):
                keys.append(("yyyymm", *CASE_KEY))
            if table in ("int_cases__latest", "fct_cases", settings.SUMMARY_TABLE):
                keys.append(CASE_KEY)
            for key in keys:
                cols = "*" if key == ("*",) else ", ".join(key)
                total, distinct = con.execute(
                    f"select (select count(*) from {name}), (select count(*) from (select distinct {cols} from {name}))"
                ).fetchone()
                if total != distinct:
                    found[f"{schema}.{table} ({cols})"] = total - distinct
    return found


def export_content(cfg: settings.Settings) -> dict[str, dict[str, Any]]:
    """Every exported month: its manifest without created_at, and the rows of each Parquet file."""
    out: dict[str, dict[str, Any]] = {}
    root = Path(cfg.processed_root)
    if not root.exists():
        return out
    with duckdb.connect() as con:
        for folder in sorted(root.glob("yyyymm=*")):
            manifest = json.loads((folder / "_manifest.json").read_text(encoding="utf-8"))
            manifest.pop("created_at")
            rows = {}
            for entry in manifest["files"]:
                cursor = con.execute(
                    "select * from read_parquet(?, hive_partitioning = false)", [str(folder / entry["path"])]
                )
                rows[entry["path"]] = ([d[0] for d in cursor.description], cursor.fetchall())
            out[folder.name.split("=", 1)[1]] = {
                "manifest": manifest,
                "rows": rows,
                "files": sorted(p.name for p in folder.iterdir()),
            }
    return out


def exported_summary(cfg: settings.Settings, yyyymm: str) -> dict[tuple, dict[str, Any]]:
    content = export_content(cfg)[yyyymm]
    columns, rows = content["rows"][f"{settings.SUMMARY_TABLE}.parquet"]
    return summary_by_key(columns, rows)


def mart_summary(cfg: settings.Settings) -> dict[tuple, dict[str, Any]]:
    with connect(cfg) as con:
        cursor = con.execute(f"select * from mart.{settings.SUMMARY_TABLE}")
        return summary_by_key([d[0] for d in cursor.description], cursor.fetchall())


def of_month(summary: Mapping[tuple, Mapping[str, Any]], yyyymm: str) -> dict[tuple, Mapping[str, Any]]:
    return {k: v for k, v in summary.items() if v["yyyymm"] == yyyymm}


# ------------------------------------------------------------------------------- patient data

_TEN_CHARS = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{10}(?![0-9A-Za-z])")


def patient_values(raw_root: str | Path) -> tuple[set[str], set[str]]:
    """Every patient id and every y1 free-text name (A006010 p9) in the raw files under ``raw_root``."""
    ids: set[str] = set()
    names: set[str] = set()
    for path in Path(raw_root).glob("yyyymm=*/*.txt"):
        if not path.is_file():
            continue
        for line in path.read_bytes().decode("cp932", "replace").splitlines()[1:]:
            fields = line.split("\t")
            if len(fields) > 1:
                ids.add(fields[1])
            if path.name.startswith("FF1_") and len(fields) == 17 and fields[5] == "A006010" and fields[16]:
                names.add(fields[16])
    return ids, names


def leaked(text: str, ids: set[str], names: set[str]) -> list[str]:
    """The patient ids and names that occur in ``text`` (ids as whole 10-character tokens)."""
    found = sorted({token for token in _TEN_CHARS.findall(text) if token in ids})
    found += sorted(name for name in names if name in text)
    return found
