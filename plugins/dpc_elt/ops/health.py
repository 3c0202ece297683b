"""The weekly manual-maintenance checks of the operations seed, on what ``Backend.health`` reports."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dpc_elt.ops.thresholds import ANALYZE_AFTER_ROWS, TABLE_SKEW_PCT, VACUUM_FULL_SHARE_PCT

if TYPE_CHECKING:
    from dpc_elt.backends.base import Backend
    from dpc_elt.core.tables import TableHealth

log = logging.getLogger(__name__)

CHECKS = ("vacuum_full", "skew", "analyze")


@dataclass(frozen=True)
class Finding:
    check: str  # one of CHECKS
    name: str
    value: float
    threshold: float
    action: str

    def text(self) -> str:
        unit = "" if self.check == "analyze" else " %"
        compare = ">" if self.check == "skew" else "≥"
        return (
            f"{self.name}: {self.check} {self.value:,.1f}{unit} {compare} {self.threshold:,.0f}{unit} → {self.action}"
        )


def evaluate_health(health: Iterable[TableHealth], backend: Backend) -> list[Finding]:
    """The seed's manual-trigger conditions: 20 % or more unsorted/unused, more than 20 % skew,
    100 million or more rows changed since the last ANALYZE; the action is the backend's."""
    findings = []
    for item in health:
        shares = [share for share in (item.unsorted_pct, item.unused_pct) if share is not None]
        if shares and max(shares) >= VACUUM_FULL_SHARE_PCT:
            action = backend.maintenance_action("vacuum_full", item.name)
            findings.append(Finding("vacuum_full", item.name, max(shares), VACUUM_FULL_SHARE_PCT, action))
        if item.skew_pct is not None and item.skew_pct > TABLE_SKEW_PCT:
            action = backend.maintenance_action("skew", item.name)
            findings.append(Finding("skew", item.name, item.skew_pct, TABLE_SKEW_PCT, action))
        if item.rows_since_analyze is not None and item.rows_since_analyze >= ANALYZE_AFTER_ROWS:
            action = backend.maintenance_action("analyze", item.name)
            findings.append(Finding("analyze", item.name, item.rows_since_analyze, ANALYZE_AFTER_ROWS, action))
    return findings
