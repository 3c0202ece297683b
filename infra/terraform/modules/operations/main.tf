# modules/operations: the observability and capacity policy of the operations design for one
# environment — dashboard, alarms, the CopyErrorCount metric filter, the dpc-alerts topic and its
# subscribers, and the Redshift Serverless capacity, usage limit and query limit.
# Numbers: thresholds.tf. Pre-merge: terraform fmt -check, validate, plan (../../README.md).

locals {
  alarm_actions           = [aws_sns_topic.alerts.arn]
  slack_enabled           = var.slack_team_id != null && var.slack_channel_id != null
  redshift_log_group_name = coalesce(var.redshift_log_group_name, "/aws/redshift-serverless/workgroup/${var.workgroup_name}")
  custom_namespace        = "Custom/DPC"
}
