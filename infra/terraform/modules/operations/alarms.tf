# The seed's alarms (アラート設定) and the thresholds of its metrics table, every one to dpc-alerts.
# One AWS account per environment: the names are the seed's, unsuffixed.
locals {
  rs = var.redshift_metrics
}

resource "aws_cloudwatch_metric_alarm" "elt_delay" {
  alarm_name          = "Alert-ELT-Delay"
  alarm_description   = "dpc_elt is more than 90 min past the time its next run should have ended well (or dpc_metrics stopped publishing). docs/runbook.md: Delayed run."
  namespace           = local.custom_namespace
  metric_name         = "ELTExecutionDelay"
  dimensions          = { Environment = var.environment }
  statistic           = "Maximum"
  period              = local.thresholds.elt_delay_period_seconds
  evaluation_periods  = local.thresholds.elt_delay_datapoints
  datapoints_to_alarm = local.thresholds.elt_delay_datapoints
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.thresholds.elt_delay_minutes
  treat_missing_data  = "breaching" # no datapoint: the metric DAG or the scheduler is down
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "copy_error" {
  alarm_name          = "Alert-COPY-Error"
  alarm_description   = "copy_raw rejected a data line (DPC_COPY_ERROR in the MWAA task log). docs/runbook.md: COPY error."
  namespace           = local.custom_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.copy_errors.metric_transformation[0].name
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = local.thresholds.copy_error_count
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "storage_high" {
  alarm_name          = "Alert-Storage-High"
  alarm_description   = "Managed storage at 90 % or more of storage_budget_mb. docs/runbook.md: Storage pressure."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = local.thresholds.storage_used_pct
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "used_pct"
    expression  = "100 * used / ${var.storage_budget_mb}"
    label       = "UsedStorage % of budget"
    return_data = true
  }

  metric_query {
    id = "used"
    metric {
      namespace   = local.rs.namespace
      metric_name = local.rs.used_storage
      dimensions  = { Namespace = var.namespace_name }
      stat        = "Average"
      period      = 3600
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "rpu_spike" {
  alarm_name          = "Alert-RPU-Spike"
  alarm_description   = "More than 28 RPU for 5 minutes (max 32). docs/runbook.md: RPU spike."
  namespace           = local.rs.namespace
  metric_name         = local.rs.rpu_consumption
  dimensions          = { Workgroup = var.workgroup_name }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = local.thresholds.rpu_spike_minutes
  datapoints_to_alarm = local.thresholds.rpu_spike_minutes
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.thresholds.rpu_spike
  treat_missing_data  = "notBreaching" # paused: no compute
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "query_failure" {
  alarm_name          = "Alert-Query-Failure"
  alarm_description   = "FailedQueryCount grew in 3 consecutive 5-minute periods. docs/runbook.md: dbt failure."
  namespace           = local.rs.namespace
  metric_name         = local.rs.queries_failed
  dimensions          = { Workgroup = var.workgroup_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = local.thresholds.query_failure_increases
  datapoints_to_alarm = local.thresholds.query_failure_increases
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "query_failure_rate" {
  alarm_name          = "Alert-Query-Failure-Rate"
  alarm_description   = "More than 5 % of the queries of the last hour failed (FailedQueryCount / TotalQueryCount). docs/runbook.md: dbt failure."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.thresholds.query_failure_rate_pct
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "failed_pct"
    expression  = "IF(total > 0, 100 * FILL(failed, 0) / total, 0)"
    label       = "FailedQueryCount / TotalQueryCount %"
    return_data = true
  }

  metric_query {
    id         = "total"
    expression = "FILL(failed, 0) + FILL(succeeded, 0)"
  }

  metric_query {
    id = "failed"
    metric {
      namespace   = local.rs.namespace
      metric_name = local.rs.queries_failed
      dimensions  = { Workgroup = var.workgroup_name }
      stat        = "Sum"
      period      = 3600 * local.thresholds.query_failure_rate_hours
    }
  }

  metric_query {
    id = "succeeded"
    metric {
      namespace   = local.rs.namespace
      metric_name = local.rs.queries_succeeded
      dimensions  = { Workgroup = var.workgroup_name }
      stat        = "Sum"
      period      = 3600 * local.thresholds.query_failure_rate_hours
    }
  }
}

# PAUSED less than 30 % of a day = busy more than 70 %: RPU-seconds used over base RPU × a day.
# An upper bound of the busy share (scaling above the base counts more): a schedule-review notice.
resource "aws_cloudwatch_metric_alarm" "paused_share_low" {
  alarm_name          = "Alert-Paused-Share-Low"
  alarm_description   = "Redshift Serverless was paused less than 30 % of the last day: review the schedules (seed: ServerlessDatabaseStatus)."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 100 - local.thresholds.paused_share_min_pct
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "busy_pct"
    expression  = "100 * FILL(rpu_seconds, 0) / (86400 * ${var.base_capacity_rpu})"
    label       = "busy share of the day %"
    return_data = true
  }

  metric_query {
    id = "rpu_seconds"
    metric {
      namespace   = local.rs.namespace
      metric_name = local.rs.compute_seconds
      dimensions  = { Workgroup = var.workgroup_name }
      stat        = "Sum"
      period      = 86400
    }
  }
}
