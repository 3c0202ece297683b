output "queue_url" {
  description = "The manifest events queue: DPC_MANIFEST_QUEUE_URL of the MWAA environment."
  value       = aws_sqs_queue.manifests.id
}

output "queue_arn" {
  description = "The manifest events queue."
  value       = aws_sqs_queue.manifests.arn
}

output "dead_letter_queue_url" {
  description = "Where messages that started no run end up (runbook: Start when the manifest lands)."
  value       = aws_sqs_queue.manifests_dlq.id
}

output "mwaa_env_line" {
  description = "The line for mwaa/<environment>.env; scripts/build_mwaa.sh exports it in startup.sh."
  value       = "DPC_MANIFEST_QUEUE_URL=${aws_sqs_queue.manifests.id}"
}
