"""The one interface every step asks of the warehouse and its storage, whichever backend runs.

Two implementations: :class:`dpc_elt.backends.embedded.EmbeddedBackend` (local files or any fsspec
URI + DuckDB) and :class:`dpc_elt.backends.redshift.RedshiftBackend` (S3 + Redshift Serverless
through the amazon provider). :func:`dpc_elt.backends.get_backend` is the only place that picks one;
nothing else in the package asks which backend is configured.

A step that waits on the warehouse returns :class:`Pending` instead of its result when the work was
submitted and finishes later (Redshift: a Data API batch). The step's operator then defers on
``Pending.trigger`` — no worker slot is held — and, when the trigger fires, hands the event to
:meth:`Backend.resume`, which returns the result (or another ``Pending``). The embedded backend
finishes every step in place and never returns ``Pending``.

Contracts every implementation keeps (tested once, against both, in ``tests/backends``):

* ``load_month`` is all or nothing: the month is deleted from every raw table and the listed files
  loaded in one transaction; a bad line raises ``RawFileError`` (file, line, rule) and leaves every
  table as it was.
* ``rollback_stage`` deletes the month from every stage table, in one transaction.
* ``compute_readmit`` makes ``mart.fact_case_summary`` equal contract §3 and returns the months whose
  rows changed; ``export_months`` rewrites exactly those months' folders, the manifest last.
* Nothing returned or logged holds a patient value: counts, codes, names, URIs only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from dpc_elt.core.manifest import ValidatedManifest
    from dpc_elt.core.tables import TableHealth


@dataclass(frozen=True)
class Pending:
    """Work submitted to the warehouse that finishes later.

    ``trigger`` is an Airflow trigger to defer on; ``state`` (JSON-serialisable: ids, the month, counts)
    is what :meth:`Backend.resume` needs to finish the step once the trigger fired.
    """

    step: str
    trigger: Any
    state: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """The warehouse and storage of one deployment."""

    name: str  # the DPC_BACKEND value: "embedded" or "production"
    dialect: str  # the include/sql dialect: "duckdb" or "redshift"
    dbt_target: str  # the profiles.yml target

    # --- storage ---------------------------------------------------------------------------------
    def filesystem(self, uri: str) -> tuple[AbstractFileSystem, str]:
        """The filesystem and path of ``uri`` under the raw or processed root."""

    def table_dataset(self, schema: str, table: str) -> tuple[str, str]:
        """A warehouse table as OpenLineage names it, (namespace, name), as Cosmos names dbt's tables."""

    def manifest_sensor(self, **task_kwargs: Any) -> Any:
        """The deferrable sensor that waits for the run month's ``_manifest.json`` (task id and retries
        come from ``task_kwargs``)."""

    def validate_month(self, yyyymm: str, facility_cd: str | None = None) -> ValidatedManifest:
        """The month's delivery against its manifest: all or nothing (``ManifestError``); with
        ``facility_cd``, only that facility's listed files (a one-facility reload)."""

    # --- the steps that write ------------------------------------------------------------------------
    def load_month(self, yyyymm: str, manifest: ValidatedManifest) -> dict[str, int] | Pending:
        """copy_raw: replace the month (a one-facility manifest: that facility's rows of it) in every raw
        table, all or nothing; rows of the month per file type."""

    def rollback_stage(self, yyyymm: str, facility_cd: str | None = None) -> dict[str, int] | Pending:
        """rollback_stage: delete the month (or one facility's rows of it) from every stage table; rows
        deleted per table."""

    def compute_readmit(self, yyyymm: str, facility_cd: str | None = None) -> list[str] | Pending:
        """compute_readmit: fact_case_summary equal to contract §3, the month's patients (of
        ``facility_cd`` only after a one-facility reload) recomputed; the months whose rows changed."""

    def export_months(self, months: Sequence[str]) -> list[dict[str, Any]] | Pending:
        """export_parquet: clear and rewrite each month's folder, its ``_manifest.json`` last."""

    def resume(self, pending_state: dict[str, Any], event: dict[str, Any] | None) -> Any:
        """Finish a step that returned :class:`Pending`, once its trigger fired (``pending_state`` is the
        ``Pending.state`` it returned; the result, or the next ``Pending``)."""

    # --- reads -----------------------------------------------------------------------------------------
    def month_counts(self, yyyymm: str) -> dict[str, int]:
        """Rows of the month in every table the run wrote (``schema.table`` → rows)."""

    def quality_report_rows(self, yyyymm: str) -> dict[str, list[list[Any]]]:
        """The rows of the quality report's queries (aggregates only), keyed as ``quality_report.queries``."""

    def health(self) -> list[TableHealth]:
        """What the weekly maintenance checks look at, per table."""

    # --- maintenance -------------------------------------------------------------------------------------
    def vacuum_targets(self) -> list[str]:
        """What the weekly VACUUM works through, one task each, one at a time."""

    def vacuum(self, target: str) -> dict[str, Any] | Pending:
        """VACUUM one target (outside any transaction)."""

    def compression_targets(self) -> list[str]:
        """What the monthly ANALYZE COMPRESSION works through, one task each, one at a time."""

    def analyze_compression(self, target: str) -> list[str] | Pending:
        """One target's compression findings as report lines."""

    def maintenance_action(self, check: str, table: str) -> str:
        """What to do by hand when ``table`` breaks a check of ``dpc_elt.ops.health.CHECKS``."""

    def publish_metric(self, name: str, value: float) -> bool:
        """Publish an operations metric where this deployment's alarms read it; False if it is only logged."""
