# CopyErrorCount: copy_raw logs one fixed line per rejected data line,
# `DPC_COPY_ERROR count=1 file=<name> line=<n>` (dpc_elt.core.copy_errors.report_copy_error), in the MWAA
# task log group. Serverless has no STL_LOAD_ERRORS and exports no load errors to CloudWatch, so the
# pipeline's own line is what the filter counts. A term pattern matches both plain and JSON log lines.
resource "aws_cloudwatch_log_metric_filter" "copy_errors" {
  name           = "dpc-copy-error-count"
  log_group_name = var.mwaa_task_log_group_name
  pattern        = "\"DPC_COPY_ERROR\""

  metric_transformation {
    name      = "CopyErrorCount"
    namespace = local.custom_namespace
    value     = "1"
    unit      = "Count"
  }
}
