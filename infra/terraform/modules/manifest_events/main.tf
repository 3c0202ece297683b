# modules/manifest_events: the raw bucket tells dpc_elt that a month's manifest landed.
#
#   s3://<bucket>/<raw_prefix>/yyyymm=YYYYMM/_manifest.json  --ObjectCreated-->  SQS dpc-elt-manifests-<env>
#   --(MWAA triggerer: AssetWatcher, MessageQueueTrigger scheme "sqs")-->  Asset dpc_elt_manifests  -->  a dpc_elt run
#
# The queue's URL is the Airflow setting DPC_MANIFEST_QUEUE_URL (output `mwaa_env_line`, into
# mwaa/<environment>.env); without it the DAG keeps its 03:00 JST schedule alone.
# Messages that are not S3 records (S3's s3:TestEvent when the notification is created) are left in
# the queue by the trigger's filter and move to the dead-letter queue after max_receive_count receives.
# aws_s3_bucket_notification owns ALL notifications of the bucket: a bucket that already has others
# must declare them here too (or in the one place that manages them), or an apply removes them.

locals {
  queue_name  = coalesce(var.queue_name, "dpc-elt-manifests-${var.environment}")
  bucket_arn  = "arn:aws:s3:::${var.bucket_name}"
  raw_prefix  = trimsuffix(var.raw_prefix, "/")
  key_prefix  = local.raw_prefix == "" ? "" : "${local.raw_prefix}/"
  role_name   = element(split("/", var.mwaa_execution_role_name), length(split("/", var.mwaa_execution_role_name)) - 1)
  alarm_topic = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]
}

resource "aws_sqs_queue" "manifests_dlq" {
  name                      = "${local.queue_name}-dlq"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps: time to look at what did not fit
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "manifests" {
  name = local.queue_name
  # SSE-SQS: S3 can send to it without a KMS key policy, and the messages (bucket and key names,
  # no file content) are encrypted at rest.
  sqs_managed_sse_enabled    = true
  message_retention_seconds  = var.message_retention_seconds
  visibility_timeout_seconds = var.visibility_timeout_seconds
  receive_wait_time_seconds  = 20 # long polling, as the trigger asks for it

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.manifests_dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "manifests_dlq" {
  queue_url = aws_sqs_queue.manifests_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.manifests.arn]
  })
}

data "aws_iam_policy_document" "manifests_queue" {
  statement {
    sid       = "RawBucketSendsManifestEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.manifests.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.bucket_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "manifests" {
  queue_url = aws_sqs_queue.manifests.id
  policy    = data.aws_iam_policy_document.manifests_queue.json
}

resource "aws_s3_bucket_notification" "manifests" {
  bucket = var.bucket_name

  queue {
    id            = "dpc-elt-manifests"
    queue_arn     = aws_sqs_queue.manifests.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = local.key_prefix
    filter_suffix = "_manifest.json"
  }

  # S3 checks that it may send to the queue when the notification is put.
  depends_on = [aws_sqs_queue_policy.manifests]
}

# The MWAA execution role reads and deletes the messages (the triggerer runs as that role).
data "aws_iam_policy_document" "mwaa_reads_manifest_events" {
  statement {
    sid       = "ReceiveManifestEvents"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.manifests.arn]
  }
}

resource "aws_iam_role_policy" "mwaa_reads_manifest_events" {
  name   = "dpc-elt-manifest-events-${var.environment}"
  role   = local.role_name
  policy = data.aws_iam_policy_document.mwaa_reads_manifest_events.json
}

# Anything in the dead-letter queue is a message no run was started from: look at it (runbook).
resource "aws_cloudwatch_metric_alarm" "manifest_dlq" {
  alarm_name          = "Alert-Manifest-Events-DLQ" # one account per environment, like the seed's alarms
  alarm_description   = "A message on ${local.queue_name} could not start a dpc_elt run and is in the dead-letter queue. docs/runbook.md: Start when the manifest lands."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.manifests_dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic
  tags                = var.tags
}
