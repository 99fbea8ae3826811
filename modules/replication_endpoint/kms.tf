################################################################################
# One customer managed key for this side (unless kms_key_arn brings one)
################################################################################

locals {
  create_kms_key = var.kms_key_arn == null
  kms_key_arn    = local.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn

  # Encryption context of CloudWatch Logs: the key may encrypt this module's log groups only.
  encrypted_log_group_arns = concat(
    ["${local.log_group_arn_base}${local.forwarder_log_group_name}", "${local.log_group_arn_base}${local.replicator_log_group_name}"],
    local.create_flow_logs ? ["${local.log_group_arn_base}${local.flow_log_group_name}"] : [],
  )

  kms_key_policy = {
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          # Standard statement: IAM policies of this account decide who may use the key.
          Sid       = "EnableIAMPolicies"
          Effect    = "Allow"
          Principal = { AWS = "${local.arn_prefix}:iam::${local.account_id}:root" }
          Action    = "kms:*"
          Resource  = "*"
        },
        {
          Sid       = "AllowCloudWatchLogs"
          Effect    = "Allow"
          Principal = { Service = "logs.${local.region}.${local.dns_suffix}" }
          Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
          Resource  = "*"
          Condition = {
            ArnEquals = { "kms:EncryptionContext:aws:logs:arn" = local.encrypted_log_group_arns }
          }
        },
      ],
      [for s in [
        {
          # CloudWatch alarms publish to the encrypted SNS topic.
          Sid       = "AllowCloudWatchAlarms"
          Effect    = "Allow"
          Principal = { Service = data.aws_service_principal.cloudwatch.name }
          Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
          Resource  = "*"
          Condition = {
            StringEquals = { "aws:SourceAccount" = local.account_id }
          }
        },
      ] : s if var.create_sns_topic],
      [for s in [
        {
          # The certificate expiry rule (rolesanywhere.tf) publishes to the encrypted SNS topic: the
          # topic's key must let EventBridge use it (Amazon SNS developer guide, "Key management":
          # an AWS service publishing to an encrypted topic needs kms:Decrypt and kms:GenerateDataKey*).
          Sid       = "AllowEventBridgeCertificateExpiry"
          Effect    = "Allow"
          Principal = { Service = one(data.aws_service_principal.events[*].name) }
          Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
          Resource  = "*"
          Condition = {
            StringEquals = { "aws:SourceAccount" = local.account_id }
          }
        },
      ] : s if local.certificate_expiry_alarm && var.create_sns_topic],
    )
  }
}

resource "aws_kms_key" "this" {
  count = local.create_kms_key ? 1 : 0

  description             = "DynamoDB replication ${var.name}: inbox stream, peer credentials, failure queue, logs, tables"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_in_days
  policy                  = jsonencode(local.kms_key_policy)

  tags = local.tags
}

resource "aws_kms_alias" "this" {
  count = local.create_kms_key ? 1 : 0

  name          = "alias/${var.name}-replication"
  target_key_id = aws_kms_key.this[0].key_id
}
