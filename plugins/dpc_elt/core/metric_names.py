"""Names of the pipeline's CloudWatch metrics (the operations seed): the namespace and dimension the
production backend publishes under, and that infra/terraform's alarms and dashboard read."""

from __future__ import annotations

METRIC_NAMESPACE = "Custom/DPC"
ENVIRONMENT_DIMENSION = "Environment"
ELT_DELAY_METRIC = "ELTExecutionDelay"
