output "alert_topic_arn" {
  description = "The dpc-alerts topic."
  value       = aws_sns_topic.alerts.arn
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.operations.dashboard_name
}

output "workgroup_arn" {
  description = "The Redshift Serverless workgroup."
  value       = aws_redshiftserverless_workgroup.this.arn
}

output "alarm_names" {
  description = "Every alarm of the module."
  value = [
    aws_cloudwatch_metric_alarm.elt_delay.alarm_name,
    aws_cloudwatch_metric_alarm.copy_error.alarm_name,
    aws_cloudwatch_metric_alarm.storage_high.alarm_name,
    aws_cloudwatch_metric_alarm.rpu_spike.alarm_name,
    aws_cloudwatch_metric_alarm.query_failure.alarm_name,
    aws_cloudwatch_metric_alarm.query_failure_rate.alarm_name,
    aws_cloudwatch_metric_alarm.paused_share_low.alarm_name,
  ]
}
