# A small root module using modules/operations with the seed's names (workgroup dpc-learning,
# topic dpc-alerts). `terraform init && terraform plan -var account_id=123456789012` shows what it
# would create; the ids below are placeholders for the platform stack's outputs.
provider "aws" {
  region              = var.region
  allowed_account_ids = [var.account_id]

  default_tags {
    tags = {
      project     = "dpc-elt"
      environment = var.environment
    }
  }
}

module "operations" {
  source = "../../modules/operations"

  account_id  = var.account_id
  region      = var.region
  environment = var.environment

  workgroup_name     = "dpc-learning"
  namespace_name     = "dpc-learning"
  subnet_ids         = ["subnet-00000000000000001", "subnet-00000000000000002", "subnet-00000000000000003"]
  security_group_ids = ["sg-00000000000000001"]

  # About one daily batch at the base 8 RPU plus maintenance; revisit with real usage. The price is
  # a placeholder: check the current Redshift Serverless price of the region. 500 GB of storage.
  monthly_rpu_hours  = 300
  rpu_hour_price_usd = 0.494
  storage_budget_mb  = 512000

  mwaa_task_log_group_name = "airflow-dpc-elt-${var.environment}-Task"

  # Slack: authorise the workspace once in the AWS Chatbot console, then set its id and the
  # channel id of #dpc-alerts here.
  alert_emails     = ["dpc-ops@example.org"]
  slack_team_id    = null
  slack_channel_id = null
}

# Start dpc_elt when a month's manifest lands: the raw bucket's S3 events through SQS (the bucket and
# the MWAA execution role belong to the platform stack; placeholders here). Put the output
# manifest_events_env_line into mwaa/<environment>.env.
module "manifest_events" {
  source = "../../modules/manifest_events"

  account_id               = var.account_id
  environment              = var.environment
  bucket_name              = "dpc-learning-data-${var.environment}"
  raw_prefix               = "raw"
  mwaa_execution_role_name = "dpc-elt-mwaa-execution-${var.environment}"
  alarm_topic_arn          = module.operations.alert_topic_arn
}

output "manifest_events_env_line" {
  value = module.manifest_events.mwaa_env_line
}

output "alert_topic_arn" {
  value = module.operations.alert_topic_arn
}

output "dashboard_name" {
  value = module.operations.dashboard_name
}
