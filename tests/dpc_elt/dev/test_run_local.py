"""The in-process runner of ``make run-month``: what it does around ``dag.test``."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

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


def _python(script: str) -> subprocess.CompletedProcess:
    plugins = str(Path(run_local.__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [plugins, os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_the_command_line_exits_with_its_status_after_the_exit_handlers_and_the_executors(tmp_path):
    marker = tmp_path / "closed"
    script = (
        "import atexit, multiprocessing, sys\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from dpc_elt.dev import run_local\n"
        "def main():\n"
        f"    atexit.register(lambda: open({str(marker)!r}, 'w').write('closed'))\n"
        # left running, as the OpenLineage listener leaves its pool: the exit must still shut it down
        "    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('fork'))\n"
        "    pool.submit(int).result()\n"
        "    sys.stdout.write('buffered, no newline')\n"
        "    return 3\n"
        "run_local.exit_without_teardown(main)\n"
    )
    done = _python(script)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered, no newline"  # flushed before the process ended
    assert marker.read_text() == "closed"  # the handlers ran (dbt-duckdb closes the warehouse in one)


def test_a_command_that_raises_exits_as_python_does(tmp_path):
    script = (
        "from dpc_elt.dev import run_local\n"
        "def main():\n"
        "    raise SystemExit('no such month')\n"
        "run_local.exit_without_teardown(main)\n"
    )
    done = _python(script)
    assert (done.returncode, done.stderr.strip()) == (1, "no such month")
