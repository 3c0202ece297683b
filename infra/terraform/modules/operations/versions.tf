terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # max_capacity on Serverless workgroups and aws_chatbot_slack_channel_configuration need 5.80+.
      version = ">= 5.80, < 7.0"
    }
  }
}
