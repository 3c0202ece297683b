# The seed's dashboard (CloudWatch ダッシュボード構成): same five widgets, titles, positions, periods
# and statistics; metric names mapped by var.redshift_metrics, the seed's names kept as labels.
resource "aws_cloudwatch_dashboard" "operations" {
  dashboard_name = "dpc-operations-${var.environment}"
  dashboard_body = templatefile("${path.module}/dashboard.json.tftpl", {
    region            = var.region
    environment       = var.environment
    workgroup_name    = var.workgroup_name
    namespace_name    = var.namespace_name
    metrics_namespace = var.redshift_metrics.namespace
    rpu_metric        = var.redshift_metrics.rpu_consumption
    succeeded_metric  = var.redshift_metrics.queries_succeeded
    failed_metric     = var.redshift_metrics.queries_failed
    storage_metric    = var.redshift_metrics.used_storage
    log_group_name    = local.redshift_log_group_name
    base_capacity     = var.base_capacity_rpu
    max_capacity      = var.max_capacity_rpu
    rpu_spike         = local.thresholds.rpu_spike
    elt_delay_minutes = local.thresholds.elt_delay_minutes
  })
}
