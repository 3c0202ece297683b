variable "account_id" {
  description = "AWS account of the environment."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "ap-northeast-1"
}

variable "environment" {
  description = "Environment name; the Environment dimension of ELTExecutionDelay (DPC_ENVIRONMENT)."
  type        = string
  default     = "prod"
}
