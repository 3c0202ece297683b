variable "account_id" {
  description = "AWS account of the bucket and the queue (the queue policy accepts only this account's bucket)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "environment" {
  description = "Environment name (DPC_ENVIRONMENT), in the queue's name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,31}$", var.environment))
    error_message = "environment must be lower-case letters, digits and dashes."
  }
}

variable "bucket_name" {
  description = "The existing bucket of the raw deliveries (DPC_S3_BUCKET)."
  type        = string
}

variable "raw_prefix" {
  description = "Key prefix of the raw root inside the bucket (DPC_RAW_ROOT = s3://<bucket>/<raw_prefix>); only manifests under it are sent."
  type        = string
  default     = "raw"
}

variable "mwaa_execution_role_name" {
  description = "Name (or ARN) of the MWAA environment's execution role; it gets sqs:ReceiveMessage, DeleteMessage and GetQueueAttributes on the queue."
  type        = string
}

variable "queue_name" {
  description = "Name of the queue; null = dpc-elt-manifests-<environment> (the dead-letter queue adds -dlq)."
  type        = string
  default     = null
}

variable "max_receive_count" {
  description = "Receives after which a message that started no run moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "message_retention_seconds" {
  description = "How long an unread event waits (e.g. while the environment is updated): 4 days."
  type        = number
  default     = 345600
}

variable "visibility_timeout_seconds" {
  description = "How long a received message stays hidden before it can be received again (the trigger deletes it at once)."
  type        = number
  default     = 60
}

variable "alarm_topic_arn" {
  description = "SNS topic of the dead-letter alarm (e.g. the operations module's alert_topic_arn); null = no action."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
