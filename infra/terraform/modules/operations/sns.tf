# The seed's SNS topic dpc-alerts, encrypted with a key that CloudWatch and AWS Budgets may use,
# and its subscribers: Slack through AWS Chatbot (every alarm), PagerDuty, OpsGenie and e-mail
# (only the alarms the seed routes to them, by a filter policy on the alarm name).

data "aws_iam_policy_document" "alerts_key" {
  # A key policy: "*" as resource means this key only; the account root keeps administering it.
  #checkov:skip=CKV_AWS_111:key policy, the resource "*" is the key itself
  #checkov:skip=CKV_AWS_356:key policy, the resource "*" is the key itself
  #checkov:skip=CKV_AWS_109:key policy, the account root must be able to administer its key
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${var.account_id}:root"]
    }
  }

  statement {
    sid       = "AlarmAndBudgetPublishers"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }
}

resource "aws_kms_key" "alerts" {
  description             = "dpc-alerts SNS topic (${var.environment})"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.alerts_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "alerts" {
  name          = "alias/${var.alert_topic_name}-${var.environment}"
  target_key_id = aws_kms_key.alerts.key_id
}

resource "aws_sns_topic" "alerts" {
  name              = var.alert_topic_name
  kms_master_key_id = aws_kms_key.alerts.arn
  tags              = var.tags
}

locals {
  topic_owner_actions = [
    "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe", "sns:ListSubscriptionsByTopic",
    "sns:Publish", "sns:DeleteTopic", "sns:TagResource",
  ]
}

data "aws_iam_policy_document" "alerts_topic" {
  statement {
    sid       = "AlarmsAndBudgetsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }

  statement {
    sid       = "AccountManages"
    actions   = local.topic_owner_actions
    resources = [aws_sns_topic.alerts.arn]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${var.account_id}:root"]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alert_emails)

  topic_arn           = aws_sns_topic.alerts.arn
  protocol            = "email"
  endpoint            = each.value
  filter_policy_scope = "MessageBody"
  filter_policy       = jsonencode({ AlarmName = local.routes.email })
}

resource "aws_sns_topic_subscription" "pagerduty" {
  # The URL is sensitive (it holds the integration key); whether it is set is not.
  count = nonsensitive(var.pagerduty_endpoint != null) ? 1 : 0

  topic_arn              = aws_sns_topic.alerts.arn
  protocol               = "https"
  endpoint               = var.pagerduty_endpoint
  endpoint_auto_confirms = true
  filter_policy_scope    = "MessageBody"
  filter_policy          = jsonencode({ AlarmName = local.routes.pagerduty })
}

resource "aws_sns_topic_subscription" "opsgenie" {
  # The URL is sensitive (it holds the integration key); whether it is set is not.
  count = nonsensitive(var.opsgenie_endpoint != null) ? 1 : 0

  topic_arn              = aws_sns_topic.alerts.arn
  protocol               = "https"
  endpoint               = var.opsgenie_endpoint
  endpoint_auto_confirms = true
  filter_policy_scope    = "MessageBody"
  filter_policy          = jsonencode({ AlarmName = local.routes.opsgenie })
}

# Slack: AWS Chatbot subscribes to the topic and posts every alarm and the budget notice to the
# channel (the workspace is authorised once in the Chatbot console; no webhook secret to keep).
data "aws_iam_policy_document" "chatbot_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["chatbot.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "chatbot" {
  count = local.slack_enabled ? 1 : 0

  name               = "dpc-alerts-chatbot-${var.environment}"
  assume_role_policy = data.aws_iam_policy_document.chatbot_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "chatbot_read_alarms" {
  count = local.slack_enabled ? 1 : 0

  role       = aws_iam_role.chatbot[0].name
  policy_arn = "arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess"
}

resource "aws_chatbot_slack_channel_configuration" "alerts" {
  count = local.slack_enabled ? 1 : 0

  configuration_name    = "dpc-alerts-${var.environment}"
  iam_role_arn          = aws_iam_role.chatbot[0].arn
  slack_team_id         = var.slack_team_id
  slack_channel_id      = var.slack_channel_id
  sns_topic_arns        = [aws_sns_topic.alerts.arn]
  guardrail_policy_arns = ["arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess"]
  logging_level         = "ERROR"
  tags                  = var.tags
}
