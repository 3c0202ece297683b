"""Errors whose messages are safe to show anywhere: they name files, lines and rules, never values.

Anything that reaches a log line, a notification or an exception message must hold counts and codes
only, no patient data. Exceptions of these classes are written to that rule, so the failure notice
may quote their text; for every other exception only the type name is reported.
"""

from __future__ import annotations


class DpcInputError(Exception):
    """Input from outside (a manifest or a raw file) breaks the data contract."""

    def __init__(self, file: str, rule: str, detail: str = "", line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.rule = rule
        self.detail = detail
        where = f"{file}:{line}" if line is not None else file
        text = f"{where}: {rule}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


class ManifestError(DpcInputError):
    """The month's _manifest.json, or a file it lists, fails validation. Never retried."""


class RawFileError(DpcInputError):
    """A data line of a raw file breaks the layout. Never retried."""


class ParameterError(ValueError):
    """A trigger parameter is invalid. Never retried."""


class WarehouseBusyError(OSError):
    """The warehouse cannot be opened for now (a file lock, a throttled API): worth a retry."""


SAFE_MESSAGE_ERRORS: tuple[type[BaseException], ...] = (DpcInputError, ParameterError)
