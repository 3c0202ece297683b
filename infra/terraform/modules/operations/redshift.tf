# Redshift Serverless capacity (seed: base 8 RPU, max 32 RPU), the 600 s query limit and the
# monthly usage limit. Serverless pauses by itself when idle; there is no setting for it.
resource "aws_redshiftserverless_workgroup" "this" {
  namespace_name       = var.namespace_name
  workgroup_name       = var.workgroup_name
  base_capacity        = var.base_capacity_rpu
  max_capacity         = var.max_capacity_rpu
  publicly_accessible  = false
  enhanced_vpc_routing = true
  subnet_ids           = var.subnet_ids
  security_group_ids   = var.security_group_ids
  tags                 = var.tags

  # Every key is declared: AWS returns the defaults of the ones left out, which would show as a
  # change in every plan. max_query_execution_time is the seed's QMR (execution_time > 600 s).
  config_parameter {
    parameter_key   = "max_query_execution_time"
    parameter_value = tostring(var.max_query_execution_time_seconds)
  }
  config_parameter {
    parameter_key   = "auto_mv"
    parameter_value = "true"
  }
  config_parameter {
    parameter_key   = "datestyle"
    parameter_value = "ISO, MDY"
  }
  config_parameter {
    parameter_key   = "enable_case_sensitive_identifier"
    parameter_value = "false"
  }
  config_parameter {
    parameter_key   = "enable_user_activity_logging"
    parameter_value = "true"
  }
  config_parameter {
    parameter_key   = "query_group"
    parameter_value = "default"
  }
  config_parameter {
    parameter_key   = "require_ssl"
    parameter_value = "true"
  }
  config_parameter {
    parameter_key   = "search_path"
    parameter_value = "$user, public"
  }
  config_parameter {
    parameter_key   = "use_fips_ssl"
    parameter_value = "false"
  }
}

resource "aws_redshiftserverless_usage_limit" "monthly_compute" {
  resource_arn  = aws_redshiftserverless_workgroup.this.arn
  usage_type    = "serverless-compute"
  amount        = var.monthly_rpu_hours
  period        = "monthly"
  breach_action = var.usage_limit_breach_action
}

# The seed's "notify at 80 % of the monthly limit": a CloudWatch alarm cannot sum over a calendar
# month, AWS Budgets can. The budget is the usage limit in money; it notifies the topic at 80 %.
resource "aws_budgets_budget" "redshift_monthly" {
  name         = "dpc-redshift-serverless-${var.environment}"
  budget_type  = "COST"
  limit_amount = format("%.2f", var.monthly_rpu_hours * var.rpu_hour_price_usd)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  cost_filter {
    name   = "Service"
    values = ["Amazon Redshift"]
  }

  notification {
    comparison_operator       = "GREATER_THAN"
    threshold                 = local.thresholds.usage_limit_notify_pct
    threshold_type            = "PERCENTAGE"
    notification_type         = "ACTUAL"
    subscriber_sns_topic_arns = [aws_sns_topic.alerts.arn]
  }
}
