"""The monthly quality report on the embedded warehouse: its numbers equal an independent aggregation
of the mart rows the test wrote, small cells are suppressed, every value is escaped, a re-run rewrites
the same bytes, and export_parquet / notify_success write and link it."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dpc_elt.backends import embedded
from dpc_elt.core import settings
from dpc_elt.ops import quality_report
from dpc_elt.ops.quality_report import REPORT_NAME, FileRows, Group, MonthQuality

MONTH = "202504"
OTHER = "202503"
FACILITIES = {"131000001": 25, "131000002": 10, "131000003": 9}  # cases in MONTH: shown, boundary, suppressed
MDCS = ["01", "04", "05", None]


class Tables(HTMLParser):
    """Every <table> of a page as lists of cell texts, and whether a <script> appears."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def parse(page: str) -> Tables:
    parser = Tables()
    parser.feed(page)
    return parser


def synthetic_cases(seed: int = 3) -> list[dict[str, Any]]:
    """Mart rows: the months' cases per facility with random MDCs and readmission flags."""
    rng = random.Random(seed)
    rows = []
    serial = 0
    for month, scale in ((MONTH, 1), (OTHER, 2)):
        for facility, n in FACILITIES.items():
            for _ in range(n * scale):
                serial += 1
                r30 = rng.random() < 0.3
                rows.append(
                    {
                        "yyyymm": month,
                        "facility_cd": facility,
                        "patient_id": f"PID{serial:07d}",
                        "mdc": rng.choice(MDCS),
                        "is_readmission_7d": r30 and rng.random() < 0.5,
                        "is_readmission_30d": r30,
                        "n_source_months": 2 if rng.random() < 0.1 else 1,
                    }
                )
    return rows


def build_warehouse(cfg: settings.Settings, cases: list[dict[str, Any]], files: dict[str, dict[str, int]]) -> None:
    """Raw tables with ``files`` ({table: {source_file: rows}}) for MONTH, and the mart tables."""
    with embedded.connect(cfg) as con:
        con.execute('create schema if not exists "raw"')
        for table, per_file in files.items():
            con.execute(
                f'create table if not exists "raw"."{table}" (yyyymm varchar, source_file varchar, line_no int)'
            )
            con.execute(f'delete from "raw"."{table}"')
            for name, n in per_file.items():
                con.execute(
                    f'insert into "raw"."{table}" select $m, $f, range from range($n)', {"m": MONTH, "f": name, "n": n}
                )
        embedded.run_file(con, "compute_readmit/create_fact_case_summary", {})
        con.execute(
            "create table if not exists mart.fct_cases (yyyymm varchar, patient_id varchar, n_source_months int)"
        )
        con.execute("delete from mart.fact_case_summary")
        con.execute("delete from mart.fct_cases")
        for i, case in enumerate(cases):
            con.execute(
                "insert into mart.fact_case_summary (yyyymm, facility_cd, patient_id, admission_date, admission_seq_no,"
                " is_unplanned, is_readmission_7d, is_readmission_30d, readmitted_within_7d, readmitted_within_30d,"
                " is_death, mdc) values ($yyyymm, $facility_cd, $patient_id, date '2025-03-01' + $i, 1, false,"
                " $is_readmission_7d, $is_readmission_30d, false, false, false, $mdc)",
                {
                    k: case[k]
                    for k in ("yyyymm", "facility_cd", "patient_id", "is_readmission_7d", "is_readmission_30d", "mdc")
                }
                | {"i": i},
            )
            con.execute(
                "insert into mart.fct_cases values ($yyyymm, $patient_id, $n_source_months)",
                {k: case[k] for k in ("yyyymm", "patient_id", "n_source_months")},
            )


FILES = {
    "y1": {"FF1_131000001_2504.txt": 120, "FF1_131000002_2504.txt": 40},
    "ef_in": {"EFn_131000001_2504.txt": 900},
    "d": {"Dn_131000001_2504.txt": 300, "Dn_131000002_2504.txt": 77},
}


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    # Everything under this test's data dir (in-process dbt runs of earlier tests export DPC_* paths).
    for name in ("DPC_RAW_ROOT", "DPC_PROCESSED_ROOT", "DPC_DUCKDB_PATH", "DPC_OUTBOX_PATH", "DPC_WORK_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DPC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DPC_ENVIRONMENT", "test")
    settings.get_settings.cache_clear()
    yield settings.get_settings()
    settings.get_settings.cache_clear()


@pytest.fixture
def cases(cfg):
    rows = synthetic_cases()
    build_warehouse(cfg, rows, FILES)
    return rows


def expected_groups(cases: list[dict[str, Any]], key: str, empty: str) -> list[list[str]]:
    """The facility / MDC table as the test computes it: counts and rates in plain Python."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for case in cases:
        if case["yyyymm"] == MONTH:
            groups.setdefault(case[key] or "", []).append(case)
    out = []
    for name in sorted(groups, key=lambda k: (k == "", k)):
        members = groups[name]
        n = len(members)
        if n < 10:
            out.append([name or empty, "<10", "—", "—"])
            continue
        r7 = sum(c["is_readmission_7d"] for c in members) / n * 100
        r30 = sum(c["is_readmission_30d"] for c in members) / n * 100
        out.append([name or empty, f"{n:,}", f"{r7:.1f} %", f"{r30:.1f} %"])
    return out


def test_report_numbers_equal_an_independent_aggregation_of_the_mart(cfg, cases):
    uri = quality_report.write_report(MONTH, cfg)
    assert uri == f"{cfg.processed_root}/yyyymm={MONTH}/{REPORT_NAME}"
    page = Path(uri).read_text(encoding="utf-8")
    found = parse(page)
    files, tables, facilities, mdcs = found.tables
    expected_files = [[t, name, f"{n:,}"] for t, per_file in FILES.items() for name, n in sorted(per_file.items())]
    total = sum(n for per_file in FILES.values() for n in per_file.values())
    assert files[1:] == [*expected_files, ["total", "", f"{total:,}"]]
    month_cases = sum(1 for c in cases if c["yyyymm"] == MONTH)
    assert ["mart.fact_case_summary", f"{month_cases:,}"] in tables[1:]
    assert ["raw.y1", "160"] in tables[1:] and ["raw.d", "377"] in tables[1:]
    assert facilities[1:] == expected_groups(cases, "facility_cd", "(none)")
    assert mdcs[1:] == expected_groups(cases, "mdc", "(no MDC)")
    several = sum(1 for c in cases if c["yyyymm"] == MONTH and c["n_source_months"] > 1)
    assert several > 0
    assert f"{several} case(s) of this month have a key that is also in" in page
    assert "Rejected lines: 0." in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    # counts, rates and codes only: no patient id reaches the page
    assert not [c["patient_id"] for c in cases if c["patient_id"] in page]


def test_small_cells_show_no_count_and_no_rate(cfg, cases):
    page = Path(quality_report.write_report(MONTH, cfg)).read_text(encoding="utf-8")
    facilities = {row[0]: row for row in parse(page).tables[2][1:]}
    assert facilities["131000003"] == ["131000003", "<10", "—", "—"]  # 9 cases
    assert facilities["131000002"][1] == "10" and facilities["131000002"][2].endswith("%")  # 10 cases: shown
    assert "suppressed: fewer than 10 cases" in page
    # the chart draws bars for shown groups only: two bars per shown facility
    svg = page[page.index("<svg") : page.index("</svg>") + len("</svg>")]
    bars = [e for e in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}rect") if e.get("class") in ("d7", "d30")]
    assert len(bars) == 2 + 2 * 2  # the legend's two swatches, then 7d and 30d for two facilities
    # readmission counts are never printed: a group of 9 with readmissions gives no number away
    assert Group("x", 9, 3, 5).rate(7) is None and Group("x", 10, 3, 5).rate(30) == 50.0


def test_every_value_is_escaped_in_the_tables_and_the_svg():
    evil = '<script>alert("x")</script>&'
    quality = MonthQuality(
        yyyymm=MONTH,
        environment='prod"><img src=x onerror=alert(1)>',
        files=(FileRows("y1", f"FF1_{evil}.txt", 3),),
        tables={f"raw.{evil}": 3},
        facilities=(Group(evil, 12, 1, 2), Group("<b>small</b>", 3, 1, 1)),
        mdcs=(Group("", 12, 0, 0),),
        cases_in_several_months=0,
    )
    page = quality_report.render(quality)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    found = parse(page)
    assert found.tables[2][1][0] == evil  # the parser unescapes back to the very text
    assert "script" not in found.tags and "img" not in found.tags
    for start in [i for i in range(len(page)) if page.startswith("<svg", i)]:
        svg = page[start : page.index("</svg>", start) + len("</svg>")]
        ET.fromstring(svg)  # well-formed XML: nothing broke out of a text node or an attribute
    assert "(no MDC)" in page


def test_a_rerun_rewrites_the_same_bytes_and_a_change_rewrites_the_report(cfg, cases):
    uri = quality_report.write_report(MONTH, cfg)
    first = Path(uri).read_bytes()
    Path(uri).write_bytes(b"stale")
    assert quality_report.write_report(MONTH, cfg) == uri
    assert Path(uri).read_bytes() == first
    build_warehouse(cfg, [c for c in cases if c["facility_cd"] != "131000001"], FILES)
    quality_report.write_report(MONTH, cfg)
    assert Path(uri).read_bytes() != first
    assert "131000001" not in [row[0] for row in parse(Path(uri).read_text(encoding="utf-8")).tables[2]]


class FakeTI:
    dag_id = "dpc_elt"
    run_id = "manual__2025-05-08T00:00:00+00:00"
    task_id = "task"

    def __init__(self, xcoms: dict[str, Any]) -> None:
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value") -> Any:
        return self.xcoms.get(task_ids) if key == "return_value" else None

    def get_task_breadcrumbs(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return [{"task_id": "export_parquet", "state": "success", "duration": 1.5}]


def task_callable(factory):
    """The step as its task runs it, with only ``ti`` in the context."""
    from airflow.sdk import DAG

    with DAG(dag_id="quality_report_test", schedule=None):
        step = factory()
    if hasattr(step, "operator"):  # a @task
        return step.operator.python_callable
    from airflow.sdk.execution_time.context import OutletEventAccessors

    return lambda ti: step.execute({"ti": ti, "outlet_events": OutletEventAccessors()})


def test_export_parquet_writes_the_report_of_every_exported_month_outside_its_manifest(cfg, cases):
    from dpc_elt.orchestration import steps

    checked = {"yyyymm": MONTH, "manifest": {"files": [], "unlisted": []}}
    ti = FakeTI({steps.CHECK_MANIFEST_TASK_ID: checked, "compute_readmit": [OTHER, MONTH]})
    written = task_callable(steps.export_parquet)(ti=ti)
    assert [m["yyyymm"] for m in written] == [OTHER, MONTH]
    for month in written:
        folder = Path(cfg.processed_root) / f"yyyymm={month['yyyymm']}"
        assert month["report"] == str(folder / REPORT_NAME)
        assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", REPORT_NAME, "fact_case_summary.parquet"]
        manifest = json.loads((folder / "_manifest.json").read_text(encoding="utf-8"))
        assert [f["path"] for f in manifest["files"]] == ["fact_case_summary.parquet"]  # the report is not listed
        month_cases = sum(1 for c in cases if c["yyyymm"] == month["yyyymm"])
        assert ["mart.fact_case_summary", f"{month_cases:,}"] in parse((folder / REPORT_NAME).read_text()).tables[1]
    # Clearing export_parquet: the export empties the folder, the step writes the same report again.
    before = (Path(cfg.processed_root) / f"yyyymm={MONTH}" / REPORT_NAME).read_bytes()
    task_callable(steps.export_parquet)(ti=ti)
    assert (Path(cfg.processed_root) / f"yyyymm={MONTH}" / REPORT_NAME).read_bytes() == before


def test_notify_success_links_the_report_of_the_run_month(cfg, cases, monkeypatch):
    from dpc_elt.core import run_marker
    from dpc_elt.orchestration import steps

    monkeypatch.setattr(run_marker, "write_run_end", lambda *a, **k: None)
    report = f"{cfg.processed_root}/yyyymm={MONTH}/{REPORT_NAME}"
    exported = [
        {"yyyymm": OTHER, "uri": "x", "files": [], "report": "other-report"},
        {"yyyymm": MONTH, "uri": "y", "files": [], "report": report},
    ]
    checked = {"yyyymm": MONTH, "manifest": {"files": [], "unlisted": []}}
    ti = FakeTI({steps.CHECK_MANIFEST_TASK_ID: checked, "export_parquet": exported})
    where = task_callable(steps.notify_success)(ti=ti)
    (record,) = [json.loads(line) for line in Path(where).read_text(encoding="utf-8").splitlines()]
    assert record["report"] == report
    assert f"*Quality report*: {report}" in record["text"] and "other-report" not in record["text"]


def test_the_report_queries_are_aggregates_bound_to_the_month(cfg, cases):
    rows = embedded.EmbeddedBackend(cfg).quality_report_rows(MONTH)
    assert set(rows) == {"file:y1", "file:ef_in", "file:d", "facilities", "mdcs", "warnings"}
    with duckdb.connect(cfg.duckdb_path) as con:
        (n,) = con.execute("select count(*) from mart.fact_case_summary where yyyymm = ?", [MONTH]).fetchone()
    assert sum(r[1] for r in rows["facilities"]) == sum(r[1] for r in rows["mdcs"]) == n
    assert all(len(r) == 4 for r in rows["facilities"])  # key and three counts: no row-level value
