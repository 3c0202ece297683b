"""Named points inside long steps (``copy_raw.mid_load``, ``export_parquet.mid_export``) where a test
may make a step fail on purpose. Inert: :func:`reached` calls whatever listeners were added, and none is
in a deployment; the reliability tests and local drills add one (``dpc_elt.dev.faults``).
"""

from __future__ import annotations

from collections.abc import Callable

_listeners: list[Callable[[str], None]] = []


def add_listener(listener: Callable[[str], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def reached(name: str) -> None:
    for listener in _listeners:
        listener(name)
