"""End to end on the embedded default: synthetic months through the whole DAG with dag.test().

The expected readmission columns come from tests/contract.py, computed independently of the
pipeline straight from the y1 files (contract §3), and are compared with mart.fact_case_summary and
with the exported Parquet.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from dpc_elt.core import formats
from tests.contract import expected_summary, summary_by_key

pytestmark = pytest.mark.e2e


def query(database: str, sql: str) -> tuple[list[tuple], list[str]]:
    with duckdb.connect(database) as con:
        cursor = con.execute(sql)
        return cursor.fetchall(), [d[0] for d in cursor.description]


@pytest.fixture
def three_months(month_env):
    from dpc_elt.dev import synthetic

    raw = Path(month_env.raw_root)
    synthetic.main(["--facilities", "2", "--months", "202503-202505", "--out", str(raw), "--seed", "7", "--quiet"])
    return month_env


def test_three_months_end_to_end(three_months):
    from dpc_elt.dev.run_local import run_month

    cfg = three_months
    raw = Path(cfg.raw_root)
    months = ["202503", "202504", "202505"]
    for yyyymm in months:
        dag_run = run_month(yyyymm)
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        assert str(dag_run.state) == "success", states
        assert states["rollback_stage"] == "skipped" and states["notify_failure"] == "skipped"

    # copy_raw: every data line of every listed file, nothing else
    for yyyymm in months:
        manifest = json.loads((raw / f"yyyymm={yyyymm}" / "_manifest.json").read_text())
        for file_type in formats.FILE_TYPES:
            expected = sum(f["records"] for f in manifest["files"] if f["file_type"] == file_type)
            rows, _ = query(cfg.duckdb_path, f"select count(*) from raw.{file_type} where yyyymm = '{yyyymm}'")
            assert rows[0][0] == expected, (yyyymm, file_type)

    # compute_readmit: every contract column of every case equals the independent computation
    rows, columns = query(cfg.duckdb_path, "select * from mart.fact_case_summary")
    expected = expected_summary(raw, months)
    assert summary_by_key(columns, rows) == expected
    assert any(v["is_readmission_7d"] for v in expected.values()), "synthetic data lacks 7-day readmissions"

    # export_parquet: each month's Parquet holds exactly that month's rows, and its manifest says so
    processed = Path(cfg.processed_root)
    for yyyymm in months:
        folder = processed / f"yyyymm={yyyymm}"
        out_manifest = json.loads((folder / "_manifest.json").read_text())
        (entry,) = out_manifest["files"]
        parquet = folder / entry["path"]
        with duckdb.connect() as con:
            cursor = con.execute("select * from read_parquet($p, hive_partitioning = false)", {"p": str(parquet)})
            exported = summary_by_key([d[0] for d in cursor.description], cursor.fetchall())
        assert exported == {k: v for k, v in expected.items() if v["yyyymm"] == yyyymm}
        assert entry["rows"] == len(exported)

    # the Asset: one event per exported month on dpc_elt_exports, with the month's rows and manifest hash
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "dpc_elt_exports")
            .order_by(AssetEvent.id)
        ).all()
        extras = [dict(event.extra) for event in events]
        # Cosmos emits one Asset per dbt model it builds (lineage raw -> stage -> mart in the UI)
        model_assets = set(
            session.scalars(
                select(AssetModel.uri).join(AssetEvent, AssetEvent.asset_id == AssetModel.id).distinct()
            ).all()
        )
    for model in ("stage/stg_dpc__ef_in_stays", "stage/stg_dpc__y1_cases", "mart/fct_cases"):
        assert any(uri.startswith("duckdb:") and uri.endswith(f"/{model}") for uri in model_assets), model
    assert [extra["yyyymm"] for extra in extras][-1] == "202505"
    assert {extra["yyyymm"] for extra in extras} == set(months)
    for extra in extras[-1:]:
        folder = processed / f"yyyymm={extra['yyyymm']}"
        assert extra["uri"] == str(folder)
        assert extra["manifest_sha256"] == hashlib.sha256((folder / "_manifest.json").read_bytes()).hexdigest()
        assert extra["rows"] == json.loads((folder / "_manifest.json").read_text())["files"][0]["rows"]

    # notify_success: one success message per run, counts only — no patient id anywhere
    messages = [json.loads(line) for line in Path(cfg.outbox_path).read_text(encoding="utf-8").splitlines()]
    assert [m["status"] for m in messages] == ["SUCCESS"] * 3
    assert messages[-1]["counts"]["mart.fact_case_summary"] == sum(
        1 for v in expected.values() if v["yyyymm"] == "202505"
    )
    assert set(messages[-1]["durations"]) >= {"copy_raw", "build_stage", "export_parquet"}
    patient_ids = {key[1] for key in expected}
    outbox_text = Path(cfg.outbox_path).read_text(encoding="utf-8")
    assert not [pid for pid in patient_ids if pid in outbox_text]


def test_bad_line_fails_the_run_names_file_and_line_and_loads_nothing(three_months):
    from dpc_elt.dev.run_local import run_month

    cfg = three_months
    assert str(run_month("202503").state) == "success"
    before, _ = query(cfg.duckdb_path, "select count(*) from raw.ef_in")

    # Break one line of 202504's EF file (one field too few), keeping the manifest consistent with it,
    # so validation passes and the load itself must refuse the month.
    import hashlib

    folder = Path(cfg.raw_root) / "yyyymm=202504"
    manifest = json.loads((folder / "_manifest.json").read_text())
    entry = next(f for f in manifest["files"] if f["file_type"] == "ef_in")
    lines = (folder / entry["path"]).read_bytes().split(b"\r\n")
    lines[2] = lines[2].rsplit(b"\t", 1)[0]
    data = b"\r\n".join(lines)
    (folder / entry["path"]).write_bytes(data)
    entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (folder / "_manifest.json").write_text(json.dumps(manifest))

    dag_run = run_month("202504")
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert str(dag_run.state) == "failed"
    assert states["copy_raw"] == "failed" and states["notify_failure"] == "success"
    assert states["notify_success"] == "upstream_failed"

    after, _ = query(cfg.duckdb_path, "select count(*) from raw.ef_in")
    assert after == before, "a failed load must leave nothing half-loaded"
    failure = json.loads(Path(cfg.outbox_path).read_text(encoding="utf-8").splitlines()[-1])
    assert failure["status"] == "FAILURE"
    (failed,) = failure["failures"]
    assert failed["task_id"] == "copy_raw" and failed["error_type"] == "RawFileError"
    assert f"{entry['path']}:3" in failed["detail"]
    assert "/dags/dpc_elt/runs/" in failed["log_url"]


def check_manifest_result(dag_run) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        (value,) = session.scalars(
            select(XComModel.value).where(
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == "validate_manifest.check_manifest",
                XComModel.key == "return_value",
            )
        ).all()
    return json.loads(value) if isinstance(value, str) else value


def test_a_one_facility_reload_through_the_dag_restages_only_that_facility(three_months):
    """The facility_cd form field reaches every step: validate_manifest, copy_raw, the stage's dbt
    (DPC_FACILITY_CD), compute_readmit and the notice. To see that dbt restaged only that facility, the
    other facility's raw D rows are changed behind the pipeline's back: a facility run must leave its
    stage rows as they were (a whole-month run would restage them)."""
    from dpc_elt.dev.run_local import run_month

    cfg = three_months
    for yyyymm in ("202503", "202504"):
        assert str(run_month(yyyymm).state) == "success"
    facilities = [row[0] for row in query(cfg.duckdb_path, "select distinct facility_cd from raw.d order by 1")[0]]
    ours, other = facilities[:2]
    stage_of_other = f"select * from stage.stg_dpc__d where facility_cd = '{other}' order by all"
    other_before, _ = query(cfg.duckdb_path, stage_of_other)
    with duckdb.connect(cfg.duckdb_path) as con:
        con.execute("update raw.d set act_points = '1' where facility_cd = ? and yyyymm = '202504'", [other])
        con.execute("update raw.d set act_points = '7' where facility_cd = ? and yyyymm = '202504'", [ours])

    dag_run = run_month("202504", facility_cd=ours)
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert str(dag_run.state) == "success", states
    checked = check_manifest_result(dag_run)
    assert checked["manifest"]["facility_cd"] == ours
    assert {f["facility_cd"] for f in checked["manifest"]["files"]} == {ours}

    assert query(cfg.duckdb_path, stage_of_other)[0] == other_before  # not restaged from the changed raw
    ours_now, _ = query(
        cfg.duckdb_path,
        f"select count(*) filter (where act_points = 7) from stage.stg_dpc__d where facility_cd = '{ours}'",
    )
    assert ours_now == [(0,)]  # copy_raw replaced our raw rows from the files, and dbt restaged them
    notice = json.loads(Path(cfg.outbox_path).read_text(encoding="utf-8").splitlines()[-1])
    assert notice["status"] == "SUCCESS" and any(f"facility {ours}" in note for note in notice["notes"])
