################################################################################
# Failure queue: on-failure destination of both mappings and the replicator's poison messages
################################################################################

resource "aws_sqs_queue" "failures" {
  name                              = local.failure_queue_name
  message_retention_seconds         = var.failure_queue_retention_seconds
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600

  tags = local.tags
}
