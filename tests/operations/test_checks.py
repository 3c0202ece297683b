"""The seed's manual-maintenance conditions as checks, worded as the seed words them: 20 % or more
unsorted/unused ("20% 以上"), more than 20 % skew ("> 20%"), 100 million rows or more changed since
ANALYZE ("1 億件以上"); the numbers are read from the seed."""

from __future__ import annotations

import pytest

from dpc_elt.backends.embedded import EmbeddedBackend
from dpc_elt.core.settings import get_settings
from dpc_elt.core.tables import TableHealth
from dpc_elt.ops import thresholds
from dpc_elt.ops.health import evaluate_health
from tests.operations.support import seed_number


class NamedActions:
    """A backend as far as the checks use one: the action text for a check of a table."""

    def maintenance_action(self, check: str, table: str) -> str:
        return f"{check} of {table}"


def checks(**values) -> list[str]:
    table = TableHealth(name="raw.y1", rows=1_000_000, **values)
    return [finding.check for finding in evaluate_health([table], NamedActions())]


class TestThresholdsComeFromTheSeed:
    def test_vacuum_full_at_20_percent_unused(self, seed_text):
        assert seed_number(seed_text, r"stv_blocklist` で (\d+)% 以上の未使用領域") == thresholds.VACUUM_FULL_SHARE_PCT

    def test_skew_at_20_percent(self, seed_text):
        assert seed_number(seed_text, r"ディストリビューション偏り \| > (\d+)%") == thresholds.TABLE_SKEW_PCT

    def test_analyze_after_100_million_rows(self, seed_text):
        oku = seed_number(seed_text, r"大量データロード（(\d+) 億件以上）")
        assert oku * 100_000_000 == thresholds.ANALYZE_AFTER_ROWS

    def test_elt_delay_alarm_at_90_minutes(self, seed_text):
        assert seed_number(seed_text, r"`ELTExecutionDelay > (\d+)` 分") == thresholds.ELT_DELAY_ALARM_MINUTES


class TestVacuumFull:
    @pytest.mark.parametrize("field", ["unsorted_pct", "unused_pct"])
    def test_just_below_and_above(self, field):
        assert checks(**{field: 19.99}) == []
        assert checks(**{field: 20.0}) == ["vacuum_full"]  # 以上: 20 itself is a finding
        assert checks(**{field: 20.01}) == ["vacuum_full"]

    def test_the_larger_share_counts_once_with_the_backends_action(self):
        table = TableHealth("raw.y1", 10, unsorted_pct=35.0, unused_pct=25.0)
        (finding,) = evaluate_health([table], NamedActions())
        assert (finding.value, finding.threshold) == (35.0, 20.0)
        assert finding.action == "vacuum_full of raw.y1"
        assert finding.text() == "raw.y1: vacuum_full 35.0 % ≥ 20 % → vacuum_full of raw.y1"


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
        table = TableHealth("file dpc.duckdb", 0, unused_pct=40.0)
        (finding,) = evaluate_health([table], EmbeddedBackend(get_settings()))
        assert "runbook" in finding.action and "VACUUM FULL" not in finding.action
