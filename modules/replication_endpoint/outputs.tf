################################################################################
# What the peer side needs
################################################################################

output "region" {
  description = "Region of this side (the peer's peer_region)."
  value       = local.region
}

output "partition" {
  description = "Partition of this side (aws or aws-cn)."
  value       = local.partition
}

output "inbox_stream_name" {
  description = "Name of this side's inbox Kinesis stream (the peer's peer_inbox_stream_name)."
  value       = aws_kinesis_stream.inbox.name
}

output "inbox_stream_arn" {
  description = "ARN of this side's inbox Kinesis stream."
  value       = aws_kinesis_stream.inbox.arn
}

output "peer_writer_user_name" {
  description = "IAM user the peer's forwarder writes into the inbox as. Create its access key and store it in the PEER's secret. Null when create_peer_writer_user is false."
  value       = try(aws_iam_user.peer_writer[0].name, null)
}

output "peer_writer_user_arn" {
  description = "ARN of the peer-writer IAM user."
  value       = try(aws_iam_user.peer_writer[0].arn, null)
}

output "peer_writer_role_arn" {
  description = "ARN of the peer-writer role the peer's forwarder assumes through IAM Roles Anywhere (its secret's role_arn). Null unless peer_writer_authentication is roles_anywhere."
  value       = try(aws_iam_role.peer_writer[0].arn, null)
}

output "roles_anywhere_trust_anchor_arn" {
  description = "ARN of the trust anchor holding the pair's CA certificate (the peer's secret's trust_anchor_arn; import CRLs into it). Null unless peer_writer_authentication is roles_anywhere."
  value       = try(aws_rolesanywhere_trust_anchor.this[0].arn, null)
}

output "roles_anywhere_profile_arn" {
  description = "ARN of the Roles Anywhere profile of the peer-writer role (the peer's secret's profile_arn). Null unless peer_writer_authentication is roles_anywhere."
  value       = try(aws_rolesanywhere_profile.peer_writer[0].arn, null)
}

output "peer_writer_certificate_subject" {
  description = "Subject CN the peer-writer role trusts: \"<peer_name>.forwarder.<peer_region>\", the CN of the peer forwarder's leaf certificate. Null unless peer_writer_authentication is roles_anywhere."
  value       = local.roles_anywhere ? local.peer_forwarder_common_name : null
}

output "nat_public_ips" {
  description = "Elastic IPs the forwarder's calls leave from (empty without the created VPC): allowlist them on the peer side if it filters by source address."
  value       = aws_eip.nat[*].public_ip
}

output "peer_credentials_secret_arn" {
  description = "ARN of the secret that must hold how the forwarder authenticates in the PEER partition: the peer-writer access key, or (roles_anywhere) its certificate (docs/operations.md)."
  value       = aws_secretsmanager_secret.peer_credentials.arn
}

output "peer_credentials_secret_name" {
  description = "Name of the secret that must hold how the forwarder authenticates in the PEER partition: the peer-writer access key, or (roles_anywhere) its certificate (docs/operations.md)."
  value       = aws_secretsmanager_secret.peer_credentials.name
}

output "table_names" {
  description = "Local DynamoDB table of each logical table (the peer's tables[*].peer_table_name)."
  value       = local.table_names
}

output "table_arns" {
  description = "ARN of each logical table's local table."
  value       = local.table_arns
}

output "table_stream_arns" {
  description = "ARN of each logical table's stream (read by the forwarder, one event source mapping each)."
  value       = local.table_stream_arns
}

output "peer_table_names" {
  description = "The peer's table of each logical table, as the replicator expects it."
  value       = { for name, t in local.tables : name => t.peer_table_name }
}

output "tombstone_table_name" {
  description = "Name of the tombstone table."
  value       = aws_dynamodb_table.tombstones.name
}

output "forwarder_function_name" {
  description = "Name of the forwarder Lambda function."
  value       = aws_lambda_function.forwarder.function_name
}

output "replicator_function_name" {
  description = "Name of the replicator Lambda function."
  value       = aws_lambda_function.replicator.function_name
}

output "failure_queue_url" {
  description = "URL of the failure queue (failed batches of both mappings, poison messages of the replicator)."
  value       = aws_sqs_queue.failures.url
}

output "failure_queue_arn" {
  description = "ARN of the failure queue."
  value       = aws_sqs_queue.failures.arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard (null when create_dashboard is false)."
  value       = try(aws_cloudwatch_dashboard.this[0].dashboard_name, null)
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts this side's data."
  value       = local.kms_key_arn
}

output "sns_topic_arn" {
  description = "ARN of the alarm SNS topic (null when create_sns_topic is false)."
  value       = try(aws_sns_topic.alarms[0].arn, null)
}

output "vpc_id" {
  description = "ID of the created VPC (null when create_vpc is false)."
  value       = try(aws_vpc.this[0].id, null)
}

output "forwarder_subnet_ids" {
  description = "Subnets the forwarder runs in (empty when it runs outside a VPC)."
  value       = local.forwarder_in_vpc ? local.lambda_subnet_ids : []
}

output "forwarder_security_group_ids" {
  description = "Security groups of the forwarder."
  value       = local.forwarder_in_vpc ? local.lambda_security_group_ids : []
}

output "peer_settings" {
  description = "What this side expects of its peer, as given: region, inbox stream name, table names (by logical table), endpoint override, proxy."
  value = {
    region             = var.peer_region
    inbox_stream_name  = var.peer_inbox_stream_name
    table_names        = { for name, t in local.tables : name => t.peer_table_name }
    endpoint_url       = var.peer_endpoint_url
    https_proxy        = var.peer_https_proxy
    max_record_bytes   = var.peer_max_record_bytes
    credentials_secret = local.secret_name
  }
}

output "forwarder_role_name" {
  description = "IAM role of the forwarder (to grant it an existing table's own KMS key, for example)."
  value       = aws_iam_role.forwarder.name
}

output "replicator_role_name" {
  description = "IAM role of the replicator."
  value       = aws_iam_role.replicator.name
}

output "peer_writer_allowed_source_ips" {
  description = "Source CIDRs the peer-writer (its key or its role's sessions) is accepted from (aws:SourceIp); empty: any address."
  value       = var.peer_writer_allowed_source_ips
}
