"""The ``CopyErrorCount`` log line: one fixed line per rejected raw line, counted by the CloudWatch
metric filter of the operations design (infra/terraform/modules/operations/logs.tf). A file name and a
line number, never a field value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath

from dpc_elt.core.errors import RawFileError

log = logging.getLogger(__name__)

COPY_ERROR_METRIC = "CopyErrorCount"
COPY_ERROR_EVENT = "DPC_COPY_ERROR"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def copy_error_line(file: str, line: int | None = None, count: int = 1) -> str:
    """The line the metric filter counts. Anything but ``[A-Za-z0-9._-]`` in the name becomes ``_``."""
    if count < 1:
        raise ValueError("count must be at least 1")
    name = _UNSAFE_NAME.sub("_", PurePosixPath(str(file)).name)[:128] or "unknown"
    where = str(int(line)) if line is not None else "-"
    return f"{COPY_ERROR_EVENT} count={int(count)} file={name} line={where}"


def report_copy_error(file: str, line: int | None = None, *, count: int = 1) -> str:
    """Log one COPY error for the ``CopyErrorCount`` metric filter; returns the line."""
    text = copy_error_line(file, line, count)
    log.error(text)
    return text


@contextmanager
def copy_errors_reported() -> Iterator[None]:
    """Around a load: a rejected data line is reported for CopyErrorCount, then re-raised."""
    try:
        yield
    except RawFileError as error:
        report_copy_error(error.file, error.line)
        raise
