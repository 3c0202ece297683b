variable "account_id" {
  description = "AWS account that holds the environment (one account per environment: CopyErrorCount has no dimension)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "region" {
  description = "AWS region of MWAA, Redshift Serverless and the alarms."
  type        = string
  default     = "ap-northeast-1"
}

variable "environment" {
  description = "The Environment dimension of Custom/DPC ELTExecutionDelay; equals DPC_ENVIRONMENT of the MWAA environment (e.g. prod)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,31}$", var.environment))
    error_message = "environment must be lower-case letters, digits and dashes."
  }
}

variable "workgroup_name" {
  description = "Redshift Serverless workgroup this module manages (capacity and query limit)."
  type        = string
}

variable "namespace_name" {
  description = "Existing Redshift Serverless namespace of the workgroup (owned by the platform stack)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the workgroup (three Availability Zones)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the workgroup."
  type        = list(string)
}

variable "base_capacity_rpu" {
  description = "Base RPU of the workgroup (seed: 8, the minimum)."
  type        = number
  default     = 8
}

variable "max_capacity_rpu" {
  description = "Maximum RPU the workgroup may scale to (seed: 32; to be validated with the data volume, see docs/decisions.md)."
  type        = number
  default     = 32
}

variable "max_query_execution_time_seconds" {
  description = "Workgroup query limit: a query running longer is stopped (seed QMR: 600 s)."
  type        = number
  default     = 600
}

variable "monthly_rpu_hours" {
  description = "Monthly usage limit of the workgroup in RPU-hours; the 80 % notice is computed from it."
  type        = number
}

variable "usage_limit_breach_action" {
  description = "What Redshift Serverless does at 100 % of the usage limit: log, emit-metric or deactivate (stops queries: the pipeline fails)."
  type        = string
  default     = "emit-metric"

  validation {
    condition     = contains(["log", "emit-metric", "deactivate"], var.usage_limit_breach_action)
    error_message = "usage_limit_breach_action must be log, emit-metric or deactivate."
  }
}

variable "rpu_hour_price_usd" {
  description = "Price of one RPU-hour in the region (check the current Redshift Serverless price); turns the usage limit into the monthly cost budget that notifies at 80 %."
  type        = number
}

variable "storage_budget_mb" {
  description = "Managed storage the environment is planned for, in MB: Serverless storage has no fixed size, so Alert-Storage-High compares UsedStorage with this."
  type        = number
}

variable "mwaa_task_log_group_name" {
  description = "CloudWatch log group of the MWAA task logs (airflow-<environment name>-Task), where copy_raw writes DPC_COPY_ERROR lines."
  type        = string
}

variable "redshift_log_group_name" {
  description = "Log group read by the Redshift Error Logs widget; null = the seed's /aws/redshift-serverless/workgroup/<workgroup>."
  type        = string
  default     = null
}

variable "redshift_metrics" {
  description = "Where each metric of the seed lives in CloudWatch (seed name in the comment). Check with `aws cloudwatch list-metrics --namespace AWS/Redshift-Serverless` before the first apply."
  type = object({
    namespace         = string # seed: AWS/Redshift
    rpu_consumption   = string # seed: RPUConsumption (dimension Workgroup)
    compute_seconds   = string # seed: ServerlessDatabaseStatus PAUSED share, derived from RPU-seconds used
    queries_succeeded = string # seed: SuccessfulQueryCount (dimension Workgroup)
    queries_failed    = string # seed: FailedQueryCount (dimension Workgroup)
    used_storage      = string # seed: UsedStorage (dimension Namespace), MB
  })
  default = {
    namespace         = "AWS/Redshift-Serverless"
    rpu_consumption   = "ComputeCapacity"
    compute_seconds   = "ComputeSeconds"
    queries_succeeded = "QueriesSucceeded"
    queries_failed    = "QueriesFailed"
    used_storage      = "DataStorage"
  }
}

variable "alert_topic_name" {
  description = "SNS topic of every alarm (seed: arn:aws:sns:ap-northeast-1:<account>:dpc-alerts)."
  type        = string
  default     = "dpc-alerts"
}

variable "alert_emails" {
  description = "E-mail subscribers; they receive the alarms of local.routes.email (seed: Alert-Storage-High)."
  type        = list(string)
  default     = []
}

variable "pagerduty_endpoint" {
  description = "PagerDuty CloudWatch integration URL (HTTPS); receives Alert-ELT-Delay. null = none."
  type        = string
  default     = null
  sensitive   = true
}

variable "opsgenie_endpoint" {
  description = "OpsGenie CloudWatch integration URL (HTTPS); receives Alert-COPY-Error. null = none."
  type        = string
  default     = null
  sensitive   = true
}

variable "slack_team_id" {
  description = "Slack workspace id authorised once in the AWS Chatbot console. null = no Slack channel."
  type        = string
  default     = null
}

variable "slack_channel_id" {
  description = "Slack channel id of #dpc-alerts; AWS Chatbot posts every alarm of the topic there."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
