"""Helpers of the operations tests (importable as ``tests.operations.support``; no side effects)."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# A verbatim copy of ../shared/seeds/operations-design.md, so CI from a fresh clone has the seed;
# test_seed_copy_is_verbatim compares the two wherever ../shared exists.
SEED_COPY = HERE / "seed" / "operations-design.md"
SEED_SOURCE = REPO.parent / "shared" / "seeds" / "operations-design.md"
TERRAFORM = REPO / "infra" / "terraform"


def seed_number(text: str, pattern: str) -> int:
    """One number of the seed found by ``pattern`` (exactly one group), failing loudly when absent."""
    match = re.search(pattern, text)
    assert match, f"the seed no longer says {pattern!r}"
    return int(match.group(1))
