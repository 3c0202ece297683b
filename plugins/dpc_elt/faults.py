"""Deliberate, inert-by-default fault points for the reliability tests (tests/reliability).

``checkpoint(name)`` raises :class:`InjectedFault` when the environment variable ``DPC_FAULT`` names
``name`` (one name or a comma-separated list) and the checkpoint has not fired yet: each named
checkpoint fires once, recorded by a marker file under ``DPC_FAULT_ONCE_DIR`` (default
``<work_dir>/faults``). With ``DPC_FAULT`` unset — every real run — it is one environment lookup.

Checkpoints:

* ``task:<task_id>`` — :func:`task_started`, the ``pre_execute`` hook of every task of ``dpc_elt``
  (set in the DAG's ``default_args``, so Cosmos' dbt tasks get it too). ``pre_execute`` is used rather
  than ``on_execute_callback`` because Airflow 3 logs and swallows exceptions raised by callbacks
  (``task_runner._run_task_state_change_callbacks``), while one raised by ``pre_execute`` fails the task.
* ``copy_raw.mid_load`` — inside the load transaction, after the first raw table was written.
* ``export_parquet.mid_export`` — after the first Parquet file of the first month was uploaded
  (the month's prefix is cleared, its ``_manifest.json`` not yet written).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

ENV_FAULT = "DPC_FAULT"
ENV_ONCE_DIR = "DPC_FAULT_ONCE_DIR"


class InjectedFault(RuntimeError):
    """A deliberate failure from :func:`checkpoint`. Not transient: no retry policy retries it."""


def once_dir() -> Path:
    """Where the "already fired" markers live."""
    configured = os.environ.get(ENV_ONCE_DIR)
    if configured:
        return Path(configured)
    from dpc_elt import settings

    return Path(settings.get_settings().work_dir) / "faults"


def checkpoint(name: str) -> None:
    """Raise :class:`InjectedFault` the first time ``name`` is reached while ``DPC_FAULT`` names it."""
    wanted = os.environ.get(ENV_FAULT)
    if not wanted or name not in (part.strip() for part in wanted.split(",")):
        return
    marker = once_dir() / quote(name, safe="")
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: exactly one caller fires, even with two processes at the same checkpoint.
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    raise InjectedFault(f"injected fault at checkpoint {name}")


def task_started(context: Any) -> None:
    """``pre_execute`` hook of every dpc_elt task: the checkpoint ``task:<task_id>``."""
    checkpoint(f"task:{context['ti'].task_id}")
