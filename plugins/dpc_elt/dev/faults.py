"""Deliberate, inert-by-default fault points for the reliability tests and the local fault drill.

Development only: this module is not in the MWAA plugins.zip, and nothing in the pipeline imports it.
Local Airflow homes load it through ``$AIRFLOW_HOME/config/airflow_local_settings.py`` (written by
``scripts/airflow_init.sh`` and by the test session): its cluster policy :func:`task_policy` gives
every task of ``dpc_elt`` the ``pre_execute`` hook below, and importing it makes the pipeline's named
points (``dpc_elt.core.checkpoints``) call :func:`checkpoint`.

``checkpoint(name)`` raises :class:`InjectedFault` when the environment variable ``DPC_FAULT`` names
``name`` (one name or a comma-separated list) and the checkpoint has not fired yet: each named
checkpoint fires once, recorded by a marker file under ``DPC_FAULT_ONCE_DIR`` (default
``<work_dir>/faults``). With ``DPC_FAULT`` unset — every real run — it is one environment lookup.

Checkpoints:

* ``task:<task_id>`` — :func:`task_started`, run before every task of ``dpc_elt`` (Cosmos' dbt tasks
  too) by the ``pre_execute`` that :func:`task_policy` installs. ``pre_execute`` is used rather than
  ``on_execute_callback`` because Airflow 3 logs and swallows exceptions raised by callbacks, while one
  raised by ``pre_execute`` fails the task.
* ``copy_raw.mid_load`` — inside the load transaction, after the first raw table was written.
* ``export_parquet.mid_export`` — after the first Parquet file of the first month was uploaded
  (the month's prefix is cleared, its ``_manifest.json`` not yet written).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dpc_elt.core import checkpoints, settings

ENV_FAULT = "DPC_FAULT"
ENV_ONCE_DIR = "DPC_FAULT_ONCE_DIR"


class InjectedFault(RuntimeError):
    """A deliberate failure from :func:`checkpoint`. Not transient: no retry policy retries it."""


def once_dir() -> Path:
    """Where the "already fired" markers live."""
    configured = os.environ.get(ENV_ONCE_DIR)
    if configured:
        return Path(configured)
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
    """Before every dpc_elt task: the checkpoint ``task:<task_id>``."""
    checkpoint(f"task:{context['ti'].task_id}")


def task_policy(task: Any) -> None:
    """Airflow cluster policy (local Airflow homes only): run :func:`task_started` before every task
    of ``dpc_elt``, then the task's own ``pre_execute``."""
    if task.dag_id != "dpc_elt":
        return
    own = task.pre_execute

    def pre_execute(context: Any) -> None:
        task_started(context)
        own(context)

    task.pre_execute = pre_execute


checkpoints.add_listener(checkpoint)
