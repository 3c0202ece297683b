"""The production backend: S3 and Redshift Serverless through the amazon provider (imported here; the
embedded default never imports this package). :class:`RedshiftBackend` implements
:class:`dpc_elt.backends.base.Backend`; :func:`dpc_elt.backends.get_backend` builds it."""

from dpc_elt.backends.redshift.backend import RedshiftBackend

__all__ = ["RedshiftBackend"]
