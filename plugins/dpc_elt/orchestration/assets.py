"""The Airflow Asset downstream jobs wait for: the Parquet exports of dpc_elt.

``export_parquet`` emits one event per month it (re)wrote on :func:`exports_asset` (through the alias
:data:`EXPORTED_MONTHS`, which is how one task run records several events with their own extras); the
event's extra says which month, where, how many rows and the SHA-256 of the month's ``_manifest.json``,
so a consumer can tell a re-export from a repeat. ``dags/dpc_export_consumer.py`` is the pattern.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import Asset, AssetAlias

from dpc_elt.core import settings

EXPORTS_ASSET_NAME = "dpc_elt_exports"
EXPORTED_MONTHS = AssetAlias("dpc_elt_exported_months")


def exports_asset(cfg: settings.Settings | None = None) -> Asset:
    """The export root as an Asset: ``s3://<bucket>/processed`` in production, a ``file://`` URI locally."""
    root = (cfg or settings.get_settings()).processed_root.rstrip("/")
    uri = root if "://" in root else Path(root).resolve().as_uri()
    return Asset(name=EXPORTS_ASSET_NAME, uri=uri, group="dpc_elt")


def month_event_extra(month: dict[str, Any]) -> dict[str, Any]:
    """What an exported month's event carries: counts, names and hashes only."""
    return {
        "yyyymm": month["yyyymm"],
        "uri": month["uri"],
        "rows": sum(f["rows"] for f in month["files"]),
        "manifest_sha256": month["manifest_sha256"],
    }
