"""The production backend: S3 and Redshift Serverless through the amazon provider (imported here; the
embedded default never imports this package). :class:`RedshiftBackend` implements
:class:`dpc_elt.backends.base.Backend`; :func:`dpc_elt.backends.get_backend` builds it.

``RedshiftBackend`` is imported on first use, not with the package: the worker processes of copy_raw
import :mod:`.pieces` from this package and need neither Airflow nor the amazon provider."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dpc_elt.backends.redshift.backend import RedshiftBackend

__all__ = ["RedshiftBackend"]


def __getattr__(name: str) -> Any:
    if name == "RedshiftBackend":
        from dpc_elt.backends.redshift.backend import RedshiftBackend

        return RedshiftBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
