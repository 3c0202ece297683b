"""The production backend's own operator: the deferrable wait for the run month's ``_manifest.json`` on
S3, the amazon provider's ``S3KeySensor`` with the embedded sensor's ending (``manifest_wait.wait_ran_out``):
a scheduled run whose delivery never came ends skipped, a manual one fails naming the missing file."""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk.exceptions import AirflowSensorTimeout

from dpc_elt.backends.manifest_wait import manifest_uri, wait_ran_out
from dpc_elt.backends.redshift import s3
from dpc_elt.core import run_marker, settings


class ManifestKeySensor(S3KeySensor):
    """S3KeySensor (deferrable: the S3KeyTrigger polls in the triggerer) for
    ``<raw_root>/yyyymm=<the run's month>/_manifest.json``; the month and the wait come from the run's
    params when the task runs, so parsing needs neither."""

    ui_color = "#e8f4fa"

    def __init__(self, *, raw_root: str, poke_seconds: int = 60, **kwargs: Any) -> None:
        super().__init__(
            bucket_key=f"{raw_root}/yyyymm=<the run's month>/_manifest.json",
            deferrable=True,
            poke_interval=poke_seconds,
            **kwargs,
        )
        self.raw_root = raw_root

    def execute(self, context: Any) -> None:
        self.bucket_key = manifest_uri(self.raw_root, context)
        wait_seconds = int(context["params"]["manifest_wait_minutes"]) * 60
        self.timeout = float(wait_seconds)
        if wait_seconds == 0:
            if not self.poke(context):
                self._ran_out(context)
            return
        super().execute(context)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout:
            self._ran_out(context)

    def _ran_out(self, context: Any) -> None:
        """Skip (recording the good end on S3, through the same AWS connection) or fail."""
        marker = s3.S3Uri.parse(run_marker.run_marker_uri(settings.get_settings()))
        wait_ran_out(
            context, manifest_uri(self.raw_root, context), marker_fs=(s3.filesystem(self.aws_conn_id), marker.path)
        )
