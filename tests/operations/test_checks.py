"""The seed's manual-maintenance conditions as checks, worded as the seed words them: 20 % or more
unsorted/unused ("20% 以上"), more than 20 % skew ("> 20%"), 100 million rows or more changed since
ANALYZE ("1 億件以上"); the numbers are read from the seed."""

from __future__ import annotations

import pytest

from dpc_elt import operations
from dpc_elt.operations import TableHealth
from tests.operations.support import seed_number


def checks(**values) -> list[str]:
    health = TableHealth(name="raw.y1", rows=1_000_000, **values)
    return [finding.check for finding in operations.evaluate_health([health], "redshift")]


class TestThresholdsComeFromTheSeed:
    def test_vacuum_full_at_20_percent_unused(self, seed_text):
        assert seed_number(seed_text, r"stv_blocklist` で (\d+)% 以上の未使用領域") == operations.VACUUM_FULL_SHARE_PCT

    def test_skew_at_20_percent(self, seed_text):
        assert seed_number(seed_text, r"ディストリビューション偏り \| > (\d+)%") == operations.TABLE_SKEW_PCT

    def test_analyze_after_100_million_rows(self, seed_text):
        oku = seed_number(seed_text, r"大量データロード（(\d+) 億件以上）")
        assert oku * 100_000_000 == operations.ANALYZE_AFTER_ROWS

    def test_elt_delay_alarm_at_90_minutes(self, seed_text):
        assert seed_number(seed_text, r"`ELTExecutionDelay > (\d+)` 分") == operations.ELT_DELAY_ALARM_MINUTES


class TestVacuumFull:
    @pytest.mark.parametrize("field", ["unsorted_pct", "unused_pct"])
    def test_just_below_and_above(self, field):
        assert checks(**{field: 19.99}) == []
        assert checks(**{field: 20.0}) == ["vacuum_full"]  # 以上: 20 itself is a finding
        assert checks(**{field: 20.01}) == ["vacuum_full"]

    def test_the_larger_share_counts_once(self):
        health = TableHealth("raw.y1", 10, unsorted_pct=35.0, unused_pct=25.0)
        (finding,) = operations.evaluate_health([health], "redshift")
        assert (finding.value, finding.threshold) == (35.0, 20.0)
        assert finding.action.startswith('VACUUM FULL "raw"."y1" TO 100 PERCENT')


class TestSkewAndAnalyze:
    def test_skew_just_below_at_and_above(self):
        assert checks(skew_pct=19.9) == []
        assert checks(skew_pct=20.0) == []  # "> 20%": 20 itself is not
        assert checks(skew_pct=20.1) == ["skew"]

    def test_analyze_just_below_and_at_100_million(self):
        assert checks(rows_since_analyze=99_999_999) == []
        assert checks(rows_since_analyze=100_000_000) == ["analyze"]  # 以上
        assert checks(rows_since_analyze=250_000_000) == ["analyze"]

    def test_unknown_measures_are_not_findings(self):
        assert checks() == []

    def test_embedded_actions_name_duckdb_steps(self):
        health = TableHealth("file dpc.duckdb", 0, unused_pct=40.0)
        (finding,) = operations.evaluate_health([health], "duckdb")
        assert "runbook" in finding.action and "VACUUM FULL" not in finding.action


def field(value):
    if value is None:
        return {"isNull": True}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"longValue": value}


def svv_result(rows):
    columns = ["schema_name", "table_name", "tbl_rows", "estimated_visible_rows", "unsorted", "skew_rows", "stats_off"]
    return {
        "ColumnMetadata": [{"name": name} for name in columns],
        "Records": [[field(value) for value in row] for row in rows],
        "TotalNumRows": len(rows),
    }


class TestSvvTableInfo:
    """Data API results of select_table_health.sql turned into findings."""

    RESULT = svv_result(
        [
            ("mart", "fct_cases", 1_000_000, 1_000_000, 0.0, 1.05, 0.0),  # healthy
            ("raw", "d", 1_000_000, 750_000, 5.0, 1.0, 0.0),  # 25 % deleted, not reclaimed
            ("raw", "ef_in", 400_000_000, 400_000_000, 21.0, 1.25, 30.0),  # unsorted, skewed, stale
            ("stage", "stg_dpc__d", 0, 0, None, None, None),  # empty, no sort key
        ]
    )

    def test_rows_to_health(self):
        health = {h.name: h for h in operations.health_from_svv_table_info(operations.data_api_rows(self.RESULT))}
        assert health["raw.d"].unused_pct == pytest.approx(25.0)
        assert health["raw.ef_in"].skew_pct == pytest.approx(25.0)
        assert health["raw.ef_in"].rows_since_analyze == 120_000_000
        assert health["stage.stg_dpc__d"] == TableHealth("stage.stg_dpc__d", 0)

    def test_findings(self):
        health = operations.health_from_svv_table_info(operations.data_api_rows(self.RESULT))
        found = sorted((f.name, f.check) for f in operations.evaluate_health(health, "redshift"))
        assert found == [
            ("raw.d", "vacuum_full"),
            ("raw.ef_in", "analyze"),
            ("raw.ef_in", "skew"),
            ("raw.ef_in", "vacuum_full"),
        ]
