# The numbers of the operations design (shared/seeds/operations-design.md), in one place.
# tests/operations/test_terraform.py reads the seed and checks every number and where it is used;
# dpc_elt.ops.thresholds holds the same ELTExecutionDelay, skew, VACUUM FULL and ANALYZE numbers.
locals {
  thresholds = {
    elt_delay_minutes        = 90  # ELTExecutionDelay > 90 minutes ...
    elt_delay_datapoints     = 2   # ... for 2 consecutive datapoints
    elt_delay_period_seconds = 300 # dpc_metrics publishes every 5 minutes
    copy_error_count         = 1   # CopyErrorCount >= 1
    storage_used_pct         = 90  # UsedStorage >= 90 % (of var.storage_budget_mb)
    rpu_spike                = 28  # RPUConsumption > 28 RPU ...
    rpu_spike_minutes        = 5   # ... for 5 minutes
    query_failure_increases  = 3   # FailedQueryCount grows 3 periods in a row
    query_failure_rate_pct   = 5   # failed / all queries > 5 % ...
    query_failure_rate_hours = 1   # ... over the last hour
    paused_share_min_pct     = 30  # PAUSED less than 30 % of a day
    usage_limit_notify_pct   = 80  # 80 % of the monthly RPU-hour usage limit
  }

  # The seed's routing (アラート設定): Slack gets every alarm through the topic; these get only
  # the alarms named here (SNS filter policy on the CloudWatch message body's AlarmName).
  routes = {
    pagerduty = ["Alert-ELT-Delay"]
    opsgenie  = ["Alert-COPY-Error"]
    email     = ["Alert-Storage-High"]
  }
}
