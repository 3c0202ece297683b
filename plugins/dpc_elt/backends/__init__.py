"""The warehouse and storage a run works against: one interface (:mod:`dpc_elt.backends.base`), two
implementations, and :func:`get_backend`, the only place that picks between them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dpc_elt.core import settings

if TYPE_CHECKING:
    from dpc_elt.backends.base import Backend


def get_backend(cfg: settings.Settings | None = None) -> Backend:
    """The backend ``DPC_BACKEND`` names: embedded (DuckDB, fsspec) or production (Redshift, S3).
    Imports only the chosen implementation (the embedded default never imports the amazon provider)."""
    cfg = cfg or settings.get_settings()
    if cfg.backend == settings.PRODUCTION:
        from dpc_elt.backends.redshift import RedshiftBackend

        return RedshiftBackend(cfg)
    from dpc_elt.backends.embedded import EmbeddedBackend

    return EmbeddedBackend(cfg)
