"""The in-process runner of ``make run-month``: what it does around ``dag.test``."""

from __future__ import annotations

import gc
import sys

import pytest

from dpc_elt.dev import run_local


def test_a_month_runs_with_what_is_loaded_left_out_of_garbage_collection():
    gc.unfreeze()
    with run_local.loaded_objects_frozen():
        assert "dbt.cli.main" in sys.modules  # imported before the freeze, as the first dbt task would
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0  # the interpreter's exit finalises everything again


def test_the_freeze_ends_when_the_month_fails():
    with pytest.raises(RuntimeError), run_local.loaded_objects_frozen():
        raise RuntimeError("a task failed")
    assert gc.get_freeze_count() == 0
