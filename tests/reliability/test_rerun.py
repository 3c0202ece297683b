"""Re-running a month: the same month twice gives the same tables and the same export content, and no
table ever holds a duplicate row (whole rows, lineage keys of raw and stage lines, case keys)."""

from __future__ import annotations

from tests.contract import expected_summary
from tests.reliability import support


def test_the_loaded_base_has_no_duplicates_and_equals_the_contract(loaded_base):
    assert not support.duplicates(loaded_base)
    expected = expected_summary(loaded_base.raw_root, support.SCENARIO_MONTHS)
    assert support.mart_summary(loaded_base) == expected
    for month in support.SCENARIO_MONTHS:
        assert support.exported_summary(loaded_base, month) == support.of_month(expected, month)


def test_each_month_run_again_changes_nothing(loaded, dbt):
    """Export content is compared with its manifest (rows, bytes, SHA-256): equal hashes mean the
    Parquet files are byte-identical, not only equal in rows."""
    tables, exports = support.fingerprint(loaded), support.export_content(loaded)
    for month in (*support.SCENARIO_MONTHS, "202503"):  # both months again, the first one twice
        support.pipeline_month(loaded, dbt, month)
        assert support.fingerprint(loaded) == tables, f"re-running {month} changed the warehouse"
        assert support.export_content(loaded) == exports, f"re-running {month} changed an export"
        assert not support.duplicates(loaded)


def test_duplicate_detection_can_fail(loaded):
    """The duplicate check sees a repeated raw line and a repeated case."""
    with support.connect(loaded) as con:
        con.execute("""insert into "raw".y1 select * from "raw".y1 limit 1""")
        con.execute("insert into mart.fact_case_summary select * from mart.fact_case_summary limit 1")
    found = support.duplicates(loaded)
    assert {"raw.y1 (*)", "raw.y1 (yyyymm, source_file, line_no)"} <= set(found)
    assert "mart.fact_case_summary (facility_cd, patient_id, admission_date, admission_seq_no)" in found
