"""The embedded warehouse: DuckDB in one file, raw files and exports under any fsspec root.

Each function opens the database, does one step of one month inside one transaction and closes it,
so a failure leaves the month exactly as it was. Tasks that call these functions share the
``dpc_warehouse`` pool of one slot: DuckDB allows one writer per file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpc_elt import faults, formats, operations, settings, sqlfiles
from dpc_elt.errors import RawFileError, WarehouseBusyError
from dpc_elt.params import validate_yyyymm

if TYPE_CHECKING:
    import duckdb

    from dpc_elt.manifest import ValidatedManifest

log = logging.getLogger(__name__)
DIALECT = "duckdb"
EXPORT_MANIFEST_NAME = "_manifest.json"


@contextmanager
def connect(cfg: settings.Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse with its memory cap (as dbt-duckdb sets it from profiles.yml: with SET, because one
    process may hold both connections and DuckDB refuses a second connect with another config)."""
    import duckdb

    database = cfg.duckdb_path
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(database)
    except duckdb.IOException as error:  # another process holds the write lock
        raise WarehouseBusyError(f"{Path(database).name}: warehouse is locked by another writer") from error
    try:
        con.execute(f"set memory_limit = '{cfg.duckdb_memory_limit}'")  # validated by settings
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def execute(con: duckdb.DuckDBPyConnection, statement: str, values: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """Run one statement of our SQL files, binding only the parameters it names."""
    names = sqlfiles.bound_names(statement)
    return con.execute(sqlfiles.to_duckdb_params(statement), {name: values[name] for name in names})


def run_file(con: duckdb.DuckDBPyConnection, name: str, values: dict[str, Any], **identifiers: object) -> list[tuple]:
    """Run every statement of one SQL file; return the rows of the last one (if it returns rows)."""
    result: list[tuple] = []
    for statement in sqlfiles.statements(name, DIALECT, **identifiers):
        cursor = execute(con, statement, values)
        result = cursor.fetchall() if cursor.description else []
    return result


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return run_file(con, "shared/table_exists", {"schema": schema, "table": table})[0][0] > 0


def load_raw_month(yyyymm: str, manifest: ValidatedManifest, cfg: settings.Settings) -> dict[str, int]:
    """copy_raw: validate and transcode every listed file, then replace the month of every raw table.

    One transaction for the month: the month is deleted from all three tables, then each file is staged
    (cp932 → UTF-8, every line checked, in this thread) while the previous staged file is inserted (in a
    second thread: DuckDB releases the GIL, so the two overlap on two cores). Any bad line rolls the
    whole transaction back and leaves every month as it was. A file type absent from the manifest ends
    with no rows for the month (a corrected delivery may drop one).
    """
    import fsspec

    from dpc_elt.manifest import month_uri
    from dpc_elt.rawfile import stage_raw_file

    fs, month_dir = fsspec.core.url_to_fs(month_uri(cfg.raw_root, yyyymm))
    Path(cfg.work_dir).mkdir(parents=True, exist_ok=True)
    layouts = {layout.file_type: layout for layout in formats.LAYOUTS.values()}

    def insert(con: duckdb.DuckDBPyConnection, file_type: str, staged_path: str) -> None:
        layout = layouts[file_type]
        columns = formats.LINEAGE_COLUMNS + layout.columns
        table = {"schema": settings.RAW_SCHEMA, "table": layout.raw_table}
        run_file(con, "copy_raw/insert_staged_file", {"path": staged_path}, **table, columns=columns)
        Path(staged_path).unlink()  # bounded disk: at most two staged files at a time

    with (
        tempfile.TemporaryDirectory(prefix=f"copy_raw_{yyyymm}_", dir=cfg.work_dir) as tmp,
        connect(cfg) as con,
        transaction(con),
    ):
        for layout in layouts.values():
            table = {"schema": settings.RAW_SCHEMA, "table": layout.raw_table}
            run_file(con, "copy_raw/create_raw_table", {}, **table, columns=layout.columns)
            run_file(con, "shared/delete_month", {"yyyymm": yyyymm}, **table)
        # The pool is the innermost context: on any error it waits for the running insert, then the
        # transaction rolls back. The connection is used by one thread at a time.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy_raw_insert") as pool:
            inserting: Future[None] | None = None
            for listed in manifest.files:
                staged_path = str(Path(tmp) / f"{listed.path}.tsv")
                with (
                    fs.open(f"{month_dir}/{listed.path}", "rb") as src,
                    open(staged_path, "w", encoding="utf-8", newline="\n") as dst,
                ):
                    result = stage_raw_file(
                        src,
                        dst,
                        file_type=listed.file_type,
                        source_file=listed.path,
                        yyyymm=yyyymm,
                        expected_sha256=listed.sha256,
                    )
                log.info("staged %s: %d records", listed.path, result.records)
                if inserting is not None:
                    inserting.result()
                inserting = pool.submit(insert, con, listed.file_type, staged_path)
            if inserting is not None:
                inserting.result()

        counts: dict[str, int] = {}
        for layout in layouts.values():
            table = {"schema": settings.RAW_SCHEMA, "table": layout.raw_table}
            counts[layout.file_type] = run_file(con, "shared/count_month", {"yyyymm": yyyymm}, **table)[0][0]
            faults.checkpoint("copy_raw.mid_load")  # fires once, after the first table: tests only
        duplicate = run_file(con, "copy_raw/find_duplicate_y1_items", {"yyyymm": yyyymm})
        if duplicate:
            source_file, line_no = duplicate[0]
            raise RawFileError(source_file, "y1 item repeated for one case (duplicate case block)", line=line_no)
    operations.analyze(cfg, (settings.RAW_SCHEMA,))  # in-batch ANALYZE after the load
    return counts


def rollback_stage(yyyymm: str, cfg: settings.Settings) -> dict[str, int]:
    """rollback_stage: delete the failed month from every stage table, in one transaction."""
    validate_yyyymm(yyyymm)
    deleted: dict[str, int] = {}
    with connect(cfg) as con, transaction(con):
        for table in settings.STAGE_TABLES:
            if not _table_exists(con, settings.STAGE_SCHEMA, table):
                continue
            identifiers = {"schema": settings.STAGE_SCHEMA, "table": table}
            before = run_file(con, "shared/count_month", {"yyyymm": yyyymm}, **identifiers)[0][0]
            run_file(con, "shared/delete_month", {"yyyymm": yyyymm}, **identifiers)
            deleted[table] = before
    return deleted


def compute_readmit(yyyymm: str, cfg: settings.Settings) -> list[str]:
    """compute_readmit: make mart.fact_case_summary equal contract §3 again; returns the months whose
    rows were deleted or inserted (they are exported again)."""
    validate_yyyymm(yyyymm)
    with connect(cfg) as con, transaction(con):
        run_file(con, "compute_readmit/create_fact_case_summary", {})
        rows = run_file(con, "compute_readmit/merge_fact_case_summary", {"yyyymm": yyyymm})
    operations.analyze(cfg, (settings.STAGE_SCHEMA, settings.MART_SCHEMA))  # after the stage and mart builds
    return sorted({row[0] for row in rows} | {yyyymm})


def month_counts(yyyymm: str, cfg: settings.Settings) -> dict[str, int]:
    """Rows of the month in every table the run wrote, for the success notice."""
    validate_yyyymm(yyyymm)
    tables = [(settings.RAW_SCHEMA, layout.raw_table) for layout in formats.LAYOUTS.values()]
    tables += [(settings.STAGE_SCHEMA, table) for table in settings.STAGE_TABLES]
    tables += [(settings.MART_SCHEMA, settings.SUMMARY_TABLE)]
    counts: dict[str, int] = {}
    with connect(cfg) as con:
        for schema, table in tables:
            if _table_exists(con, schema, table):
                values = {"yyyymm": yyyymm}
                counts[f"{schema}.{table}"] = run_file(con, "shared/count_month", values, schema=schema, table=table)[
                    0
                ][0]
    return counts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_months(months: Sequence[str], cfg: settings.Settings) -> list[dict[str, Any]]:
    """export_parquet: for each month, clear ``<processed_root>/yyyymm=<M>/`` and write it anew.

    Files are written locally first, then the prefix is cleared and the Parquet files uploaded,
    the output ``_manifest.json`` last: a reader that sees the manifest sees a complete month.
    """
    from dpc_elt.manifest import export_manifest

    months = [validate_yyyymm(month) for month in months]  # it also names the prefix to delete
    import fsspec

    fs, root = fsspec.core.url_to_fs(cfg.processed_root)
    written = []
    Path(cfg.work_dir).mkdir(parents=True, exist_ok=True)
    with (
        connect(cfg) as con,
        tempfile.TemporaryDirectory(prefix="export_", dir=cfg.work_dir) as tmp,
    ):
        for yyyymm in months:
            local = Path(tmp) / f"yyyymm={yyyymm}"
            local.mkdir()
            files = []
            for table in settings.EXPORT_TABLES:
                (statement,) = sqlfiles.statements(f"export_parquet/select_{table}", DIALECT)
                relation = con.sql(sqlfiles.to_duckdb_params(statement), params={"yyyymm": yyyymm})
                target = local / f"{table}.parquet"
                relation.write_parquet(str(target), compression="snappy")
                rows = con.read_parquet(str(target)).count("*").fetchall()[0][0]
                files.append(
                    {
                        "table": f"{settings.MART_SCHEMA}.{table}",
                        "path": target.name,
                        "rows": rows,
                        "bytes": target.stat().st_size,
                        "sha256": _sha256(target),
                    }
                )
            manifest = export_manifest(yyyymm, files)
            prefix = f"{root}/yyyymm={yyyymm}"
            if fs.exists(prefix):
                fs.rm(prefix, recursive=True)
            fs.makedirs(prefix, exist_ok=True)
            for item in files:
                fs.put_file(str(local / item["path"]), f"{prefix}/{item['path']}")
                faults.checkpoint("export_parquet.mid_export")  # fires once, after the first file: tests only
            with fs.open(f"{prefix}/{EXPORT_MANIFEST_NAME}", "w") as handle:
                json.dump(manifest, handle, ensure_ascii=False, indent=2)
            written.append({"yyyymm": yyyymm, "uri": f"{cfg.processed_root}/yyyymm={yyyymm}", "files": files})
    return written
