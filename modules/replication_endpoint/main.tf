data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

# Service principals differ between partitions for some services: let the provider name them.
data "aws_service_principal" "lambda" {
  service_name = "lambda"
}

data "aws_service_principal" "cloudwatch" {
  service_name = "cloudwatch"
}

locals {
  partition  = data.aws_partition.current.partition
  dns_suffix = data.aws_partition.current.dns_suffix
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  # Prefix of every ARN this module builds itself. Never a literal "arn:aws:": the same code runs in aws-cn.
  arn_prefix = "arn:${local.partition}"

  tags = merge(var.tags, { "replication:pair" = var.name })

  # Names. Everything is prefixed with var.name so that two pairs can live in one account.
  tombstone_table_name = "${var.name}-tombstones"
  inbox_stream_name    = "${var.name}-inbox"
  forwarder_name       = "${var.name}-forwarder"
  replicator_name      = "${var.name}-replicator"
  failure_queue_name   = "${var.name}-failures"
  secret_name          = coalesce(var.peer_credentials_secret_name, "${var.name}/peer-credentials")
  peer_writer_name     = "${var.name}-peer-writer"
  dashboard_name       = "${var.name}-replication"

  forwarder_log_group_name  = "/aws/lambda/${local.forwarder_name}"
  replicator_log_group_name = "/aws/lambda/${local.replicator_name}"
  flow_log_group_name       = "/aws/vpc-flow-logs/${var.name}"

  # ARNs that follow from names are built here, so policies are known at plan time (and readable in it).
  tombstone_table_arn = "${local.arn_prefix}:dynamodb:${local.region}:${local.account_id}:table/${local.tombstone_table_name}"
  inbox_stream_arn    = "${local.arn_prefix}:kinesis:${local.region}:${local.account_id}:stream/${local.inbox_stream_name}"
  failure_queue_arn   = "${local.arn_prefix}:sqs:${local.region}:${local.account_id}:${local.failure_queue_name}"
  log_group_arn_base  = "${local.arn_prefix}:logs:${local.region}:${local.account_id}:log-group:"

  # kms:ViaService values: the key may only be used through these services, not directly.
  via_service = {
    for service in ["kinesis", "secretsmanager", "sqs", "dynamodb"] :
    service => "${service}.${local.region}.${local.dns_suffix}"
  }
}
