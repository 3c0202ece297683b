"""The embedded backend: DuckDB in one file, raw files and exports under any fsspec root.

Each step opens the database, does its work for one month inside one transaction and closes it, so a
failure leaves the month exactly as it was. Tasks that open the warehouse share the ``dpc_warehouse``
pool of one slot: DuckDB allows one writer per file. Every step finishes in place (no ``Pending``).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpc_elt.core import checkpoints, formats, rawfile, settings, sqlfiles, tables
from dpc_elt.core.errors import RawFileError, WarehouseBusyError
from dpc_elt.core.params import validate_yyyymm
from dpc_elt.core.sqlfiles import month_or_facility, readmit_values

if TYPE_CHECKING:
    import duckdb

    from dpc_elt.core.manifest import ValidatedManifest

log = logging.getLogger(__name__)
DIALECT = "duckdb"
DATABASE_TARGET = "warehouse"  # the one vacuum target: DuckDB checkpoints the whole file


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


# As Redshift's ANALYZE (analyze_threshold_percent, default 10): a table whose row count moved less than
# this share since its last ANALYZE keeps its statistics. DuckDB's ANALYZE reads the whole table, so
# without it every month's load would re-read every month loaded before.
ANALYZE_THRESHOLD_PCT = 10.0


def _rows_and_rows_at_last_analyze(con: duckdb.DuckDBPyConnection, table: tables.Table) -> tuple[int, int | None]:
    """A table's rows now and at its newest in-batch ANALYZE (None if it was never analyzed)."""
    rows = run_file(con, "maintenance/count_rows", {}, schema=table.schema, table=table.table)[0][0]
    logged = run_file(con, "maintenance/select_last_analyze", {"schema_name": table.schema, "table_name": table.table})
    return rows, logged[0][0] if logged else None


def analyze(con: duckdb.DuckDBPyConnection, layers: Sequence[str]) -> dict[str, int]:
    """In-batch ANALYZE: refresh the statistics of every existing table of ``layers`` whose row count
    moved by ``ANALYZE_THRESHOLD_PCT`` or more since its last ANALYZE (or that was never analyzed), and
    note its row count in ``ops.analyze_log`` (the weekly check compares against it). The tables analyzed,
    with their rows."""
    analyzed: dict[str, int] = {}
    kept: dict[str, int] = {}
    run_file(con, "maintenance/create_analyze_log", {})
    for table in tables.tables_of(layers):
        if not _table_exists(con, table.schema, table.table):
            continue
        rows, last = _rows_and_rows_at_last_analyze(con, table)
        if last is not None and abs(rows - last) * 100 < ANALYZE_THRESHOLD_PCT * last:
            kept[table.qualified] = rows
            continue
        run_file(con, "maintenance/analyze_table", {}, schema=table.schema, table=table.table)
        values = {"schema_name": table.schema, "table_name": table.table, "row_count": rows}
        run_file(con, "maintenance/insert_analyze_log", values)
        analyzed[table.qualified] = rows
    log.info(
        "ANALYZE %s: %s; statistics kept (rows moved < %s %%): %s",
        ",".join(layers),
        analyzed,
        ANALYZE_THRESHOLD_PCT,
        kept,
    )
    return analyzed


def _local_copies(fs: Any, month_dir: str, manifest: ValidatedManifest, work: Path) -> dict[str, Path]:
    """The listed files as local paths for the worker processes: in place on a local root, else copied
    into ``work`` first (any other fsspec root: S3, memory, …)."""
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        return {listed.path: Path(month_dir) / listed.path for listed in manifest.files}
    copies = work / "sources"
    copies.mkdir()
    for listed in manifest.files:
        fs.get_file(f"{month_dir}/{listed.path}", str(copies / listed.path))
    return {listed.path: copies / listed.path for listed in manifest.files}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class EmbeddedBackend:
    """DuckDB (``DPC_DUCKDB_PATH``) and any fsspec root (``DPC_RAW_ROOT``, ``DPC_PROCESSED_ROOT``)."""

    name = settings.EMBEDDED
    dialect = DIALECT
    dbt_target = "duckdb"

    def __init__(self, cfg: settings.Settings) -> None:
        self.cfg = cfg

    # --- storage ---------------------------------------------------------------------------------
    def filesystem(self, uri: str) -> tuple[Any, str]:
        import fsspec

        return fsspec.core.url_to_fs(uri)

    def table_dataset(self, schema: str, table: str) -> tuple[str, str]:
        """dbt-duckdb's naming: the database is the file's stem."""
        path = Path(self.cfg.duckdb_path).resolve()
        return f"duckdb://{path}", f"{path.stem}.{schema}.{table}"

    def manifest_sensor(self, **task_kwargs: Any) -> Any:
        from dpc_elt.backends.manifest_wait import ManifestSensor

        return ManifestSensor(
            raw_root=self.cfg.raw_root,
            poke_seconds=self.cfg.manifest_poke_seconds,
            doc_md="Waits (deferred, no worker slot held) for `<raw_root>/yyyymm=<YYYYMM>/_manifest.json`.",
            **task_kwargs,
        )

    def validate_month(self, yyyymm: str, facility_cd: str | None = None) -> ValidatedManifest:
        from dpc_elt.core.manifest import validate_month

        return validate_month(self.cfg.raw_root, yyyymm, facility_cd=facility_cd)

    # --- copy_raw --------------------------------------------------------------------------------
    def load_month(self, yyyymm: str, manifest: ValidatedManifest) -> dict[str, int]:
        """copy_raw: check and transcode every listed file on all cores, then replace the month of every
        raw table, in one transaction (``dpc_elt.backends.embedded_load``). Any bad line rolls it all back
        and raises the first bad line's file, line and rule. A file type absent from the manifest ends with
        no rows for the month (a corrected delivery may drop one). A one-facility manifest
        (``manifest.facility_cd``) replaces only that facility's rows. Rows of the month per file type."""
        from dpc_elt.backends.embedded_load import MonthLoad
        from dpc_elt.core.manifest import month_uri

        cfg = self.cfg
        replaced = month_or_facility(yyyymm, manifest.facility_cd)  # both checked before anything is read
        fs, month_dir = self.filesystem(month_uri(cfg.raw_root, yyyymm))
        Path(cfg.work_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"copy_raw_{yyyymm}_", dir=cfg.work_dir) as tmp:
            load = MonthLoad(yyyymm, manifest, _local_copies(fs, month_dir, manifest, Path(tmp)), Path(tmp))

            with connect(cfg) as con, transaction(con):

                def run(name: str, values: dict[str, Any], **identifiers: object) -> list[tuple]:
                    return run_file(con, name, values, **identifiers)

                def insert(layout: Any, pieces: list[str], source_files: list[str], offsets: list[int]) -> None:
                    values = {"yyyymm": yyyymm, "pieces": pieces, "source_files": source_files, "line_offsets": offsets}
                    table = {"schema": settings.RAW_SCHEMA, "table": layout.raw_table}
                    run_file(con, "copy_raw/insert_transcoded_pieces", values, **table, columns=layout.columns)

                for layout in formats.LAYOUTS.values():
                    table = {"schema": settings.RAW_SCHEMA, "table": layout.raw_table}
                    run_file(con, "copy_raw/create_raw_table", {}, **table, columns=layout.columns)
                    run_file(con, replaced.delete_sql, replaced.values, **table)
                load.run(con, insert, run)
                duplicate = run_file(con, "copy_raw/find_duplicate_y1_items", {"yyyymm": yyyymm})
                if duplicate:
                    source_file, line_no = duplicate[0]
                    raise RawFileError(source_file, rawfile.RULE_DUPLICATE_Y1, line=line_no)
                counts = {
                    layout.file_type: run_file(
                        con,
                        "shared/count_month",
                        {"yyyymm": yyyymm},
                        schema=settings.RAW_SCHEMA,
                        table=layout.raw_table,
                    )[0][0]
                    for layout in formats.LAYOUTS.values()
                }
                analyze(con, (settings.RAW_SCHEMA,))  # in-batch ANALYZE after the load
        load.log_timings()
        return counts

    # --- the other steps that write --------------------------------------------------------------------
    def rollback_stage(self, yyyymm: str, facility_cd: str | None = None) -> dict[str, int]:
        """Delete the failed month (or the failed facility's rows of it) from every stage table, in one
        transaction."""
        replaced = month_or_facility(yyyymm, facility_cd)
        deleted: dict[str, int] = {}
        with connect(self.cfg) as con, transaction(con):
            for table in settings.STAGE_TABLES:
                if not _table_exists(con, settings.STAGE_SCHEMA, table):
                    continue
                identifiers = {"schema": settings.STAGE_SCHEMA, "table": table}
                before = run_file(con, replaced.count_sql, replaced.values, **identifiers)[0][0]
                run_file(con, replaced.delete_sql, replaced.values, **identifiers)
                deleted[table] = before
        return deleted

    def compute_readmit(self, yyyymm: str, facility_cd: str | None = None) -> list[str]:
        """mart.fact_case_summary equal to contract §3 again, recomputing the month's patients (of
        ``facility_cd`` only after a one-facility reload); the months whose rows were deleted or inserted
        (they are exported again)."""
        values = readmit_values(yyyymm, facility_cd)
        with connect(self.cfg) as con, transaction(con):
            run_file(con, "compute_readmit/create_fact_case_summary", {})
            rows = run_file(con, "compute_readmit/merge_fact_case_summary", values)
            analyze(con, (settings.STAGE_SCHEMA, settings.MART_SCHEMA))  # after the stage and mart builds
        return sorted({row[0] for row in rows} | {yyyymm})

    def export_months(self, months: Sequence[str]) -> list[dict[str, Any]]:
        """For each month, clear ``<processed_root>/yyyymm=<M>/`` and write it anew.

        Files are written locally first, then the prefix is cleared and the Parquet files uploaded,
        the output ``_manifest.json`` last: a reader that sees the manifest sees a complete month.
        """
        from dpc_elt.core.manifest import MANIFEST_NAME, write_export_manifest

        cfg = self.cfg
        months = [validate_yyyymm(month) for month in months]  # it also names the prefix to delete
        fs, root = self.filesystem(cfg.processed_root)
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
                prefix = f"{root}/yyyymm={yyyymm}"
                if fs.exists(prefix):
                    fs.rm(prefix, recursive=True)
                fs.makedirs(prefix, exist_ok=True)
                for item in files:
                    fs.put_file(str(local / item["path"]), f"{prefix}/{item['path']}")
                    checkpoints.reached("export_parquet.mid_export")  # tests may fail here
                month = write_export_manifest(fs, f"{prefix}/{MANIFEST_NAME}", yyyymm, files)
                written.append({**month, "uri": f"{cfg.processed_root}/yyyymm={yyyymm}"})
        return written

    def resume(self, pending_state: dict[str, Any], event: dict[str, Any] | None) -> Any:
        raise RuntimeError("the embedded backend never defers: nothing to resume")

    # --- reads -----------------------------------------------------------------------------------------
    def month_counts(self, yyyymm: str) -> dict[str, int]:
        """Rows of the month in every table the run wrote, for the success notice."""
        validate_yyyymm(yyyymm)
        counts: dict[str, int] = {}
        with connect(self.cfg) as con:
            for schema, table in tables.MONTH_TABLES:
                if _table_exists(con, schema, table):
                    rows = run_file(con, "shared/count_month", {"yyyymm": yyyymm}, schema=schema, table=table)
                    counts[f"{schema}.{table}"] = rows[0][0]
        return counts

    def quality_report_rows(self, yyyymm: str) -> dict[str, list[list[Any]]]:
        """The report's queries on one connection (aggregates only)."""
        from dpc_elt.core.quality_queries import queries

        validate_yyyymm(yyyymm)
        with connect(self.cfg) as con:
            return {
                q.key: [list(row) for row in run_file(con, q.name, {"yyyymm": yyyymm}, **q.identifiers)]
                for q in queries()
            }

    def health(self) -> list[tables.TableHealth]:
        """Free blocks of the database file (DuckDB has no per-table unsorted share or slice skew), and
        per table the rows changed since the last in-batch ANALYZE (from ops.analyze_log; a table never
        analyzed counts all its rows)."""
        health = []
        with connect(self.cfg) as con:
            run_file(con, "maintenance/create_analyze_log", {})
            total_blocks, free_blocks = run_file(con, "maintenance/select_database_size", {})[0]
            unused = 100.0 * free_blocks / total_blocks if total_blocks else 0.0
            health.append(tables.TableHealth(name=f"file {Path(self.cfg.duckdb_path).name}", rows=0, unused_pct=unused))
            for table in tables.MAINTAINED_TABLES:
                if not _table_exists(con, table.schema, table.table):
                    continue
                rows, last = _rows_and_rows_at_last_analyze(con, table)
                since = rows if last is None else abs(rows - last)
                health.append(tables.TableHealth(name=table.qualified, rows=rows, rows_since_analyze=since))
        return health

    # --- maintenance -------------------------------------------------------------------------------------
    def vacuum_targets(self) -> list[str]:
        return [DATABASE_TARGET]

    def vacuum(self, target: str) -> dict[str, Any]:
        """The weekly VACUUM equivalent: CHECKPOINT the file; free blocks before and after."""
        if target != DATABASE_TARGET:
            raise ValueError(f"the embedded warehouse vacuums {DATABASE_TARGET!r} only")
        with connect(self.cfg) as con:
            before = run_file(con, "maintenance/select_database_size", {})[0]
            run_file(con, "maintenance/checkpoint_warehouse", {})
            after = run_file(con, "maintenance/select_database_size", {})[0]
        sizes = {"total_blocks_before": before[0], "free_blocks_before": before[1]}
        sizes |= {"total_blocks_after": after[0], "free_blocks_after": after[1]}
        log.info("CHECKPOINT %s: %s", Path(self.cfg.duckdb_path).name, sizes)
        return sizes

    def compression_targets(self) -> list[str]:
        return [DATABASE_TARGET]

    def analyze_compression(self, target: str) -> list[str]:
        """The monthly ANALYZE COMPRESSION equivalent: columns DuckDB keeps uncompressed (it picks codecs
        itself at checkpoint); rows per compression per column go to the log."""
        if target != DATABASE_TARGET:
            raise ValueError(f"the embedded warehouse reports {DATABASE_TARGET!r} only")
        notes = []
        with connect(self.cfg) as con:
            for table in tables.MAINTAINED_TABLES:
                if not _table_exists(con, table.schema, table.table):
                    continue
                rows = run_file(con, "maintenance/select_storage_info", {"qualified_name": table.qualified})
                columns: dict[str, dict[str, int]] = {}
                for column, compression, _segments, row_count in rows:
                    columns.setdefault(column, {})[compression] = int(row_count)
                log.info("storage of %s: %s", table.qualified, columns)
                plain = sorted(column for column, codecs in columns.items() if codecs.get("Uncompressed"))
                if plain:
                    notes.append(f"{table.qualified}: stored uncompressed: {', '.join(plain)}")
        return notes or ["every stored column is compressed; DuckDB picks the codec per segment at checkpoint"]

    def maintenance_action(self, check: str, table: str) -> str:
        return {
            "vacuum_full": "compact the warehouse file (docs/runbook.md, 'Storage pressure')",
            "skew": "not applicable on one DuckDB file",
            "analyze": f"ANALYZE {table}",
        }[check]

    def publish_metric(self, name: str, value: float) -> bool:
        """Locally the metric is only logged (there is no CloudWatch)."""
        log.info("metric %s=%s (embedded: logged, not published)", name, value)
        return False
