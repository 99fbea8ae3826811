################################################################################
# The two functions, their log groups and their event source mappings
################################################################################

locals {
  low_latency = var.latency_profile == "low_latency"
  # An explicit window wins; otherwise the profile's (Lambda takes whole seconds, 0 to 300).
  forwarder_batching_window_seconds = coalesce(var.forwarder_batching_window_seconds, local.low_latency ? 0 : 1)

  # `make package` builds one set of zips per Lambda architecture (compiled dependencies differ).
  forwarder_zip_path  = coalesce(var.forwarder_zip_path, "${path.module}/../../dist/${var.lambda_architecture}/forwarder.zip")
  replicator_zip_path = coalesce(var.replicator_zip_path, "${path.module}/../../dist/${var.lambda_architecture}/replicator.zip")

  # Optional settings are left out when unset (null): the functions then apply their own defaults.
  optional_common_environment = { for k, v in {
    LOCAL_REGION = var.local_region_name
  } : k => v if v != null }

  optional_forwarder_environment = { for k, v in {
    PEER_ENDPOINT_URL = var.peer_endpoint_url
    PEER_HTTPS_PROXY  = var.peer_https_proxy
    # host[:port] of the peer partition's Roles Anywhere, for CreateSession (null: its public endpoint)
    PEER_ROLESANYWHERE_ENDPOINT = var.peer_rolesanywhere_endpoint
  } : k => v if v != null }

  common_environment = merge({
    TABLES_PARAMETER_PATH        = local.tables_parameter_path
    TABLES_SHA256                = local.tables_sha256
    TOMBSTONE_TABLE_NAME         = local.tombstone_table_name
    TIMESTAMP_ATTRIBUTE          = var.timestamp_attribute
    ORIGIN_ATTRIBUTE             = var.origin_attribute
    TOMBSTONE_TTL_SECONDS        = tostring(var.tombstone_ttl_seconds)
    MAX_CLOCK_SKEW_SECONDS       = tostring(var.max_clock_skew_seconds)
    FAILURE_QUEUE_URL            = aws_sqs_queue.failures.url
    POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace
    POWERTOOLS_LOG_LEVEL         = var.log_level
    CONFLICT_LOG_SAMPLE_RATE     = tostring(var.conflict_log_sample_rate)
    CONFLICT_LOG_MAX_LINES       = tostring(var.conflict_log_max_lines)
    CONFLICT_LOG_KEYS            = tostring(var.conflict_log_keys)
  }, local.optional_common_environment)

  forwarder_environment = merge(local.common_environment, {
    POWERTOOLS_SERVICE_NAME = local.forwarder_name
    PEER_REGION             = var.peer_region
    PEER_STREAM_NAME        = var.peer_inbox_stream_name
    PEER_SECRET_ID          = aws_secretsmanager_secret.peer_credentials.arn
    MAX_RECORD_BYTES        = tostring(var.peer_max_record_bytes)
    SECRET_MAX_AGE_SECONDS  = tostring(var.secret_max_age_seconds)
  }, local.optional_forwarder_environment, var.forwarder_environment)

  replicator_environment = merge(local.common_environment, {
    POWERTOOLS_SERVICE_NAME = local.replicator_name
    APPLY_CONCURRENCY       = tostring(var.replicator_apply_concurrency)
  }, var.replicator_environment)
}

resource "aws_cloudwatch_log_group" "forwarder" {
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (30 by default): operational logs; the durable record of replication is the tables and the failure queue.
  name              = local.forwarder_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = local.tags
}

resource "aws_cloudwatch_log_group" "replicator" {
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (30 by default): operational logs; the durable record of replication is the tables and the failure queue.
  name              = local.replicator_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = local.tags
}

resource "aws_lambda_function" "forwarder" {
  #checkov:skip=CKV_AWS_116:Invoked only by a stream event source mapping, which ignores a function DLQ; its on-failure destination is the failure queue.
  #checkov:skip=CKV_AWS_272:No signing profile exists in either partition for these zips; they are built reproducibly by `make package` and pinned by source_code_hash. Adopters with AWS Signer can add a code signing config.
  function_name = local.forwarder_name
  description   = substr("DynamoDB streams of ${join(", ", sort(keys(local.tables)))} -> ${var.peer_region} inbox ${var.peer_inbox_stream_name}", 0, 256)
  role          = aws_iam_role.forwarder.arn

  filename         = local.forwarder_zip_path
  source_code_hash = filebase64sha256(local.forwarder_zip_path)
  handler          = "app.handler"
  runtime          = var.lambda_runtime
  architectures    = [var.lambda_architecture]
  memory_size      = var.forwarder_memory_size
  timeout          = var.forwarder_timeout

  reserved_concurrent_executions = var.forwarder_reserved_concurrency
  kms_key_arn                    = local.kms_key_arn

  environment {
    variables = local.forwarder_environment
  }

  dynamic "vpc_config" {
    for_each = local.forwarder_in_vpc ? [true] : []
    content {
      subnet_ids         = local.lambda_subnet_ids
      security_group_ids = local.lambda_security_group_ids
    }
  }

  tracing_config {
    mode = var.tracing_mode
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = length(distinct(values(local.table_names))) == length(local.tables) && length(distinct([for t in values(local.tables) : t.peer_table_name])) == length(local.tables)
      error_message = "Two logical tables in tables have the same table_name or the same peer_table_name: each logical table needs its own local table and its own peer table."
    }
    precondition {
      condition     = alltrue([for names in values(local.table_protected_exclusions) : length(names) == 0])
      error_message = "tables[*].residency.excluded_attributes cannot hold a key attribute of its table nor timestamp_attribute or origin_attribute (the peer could not address or order the item without them); found: ${join(", ", flatten([for name, names in local.table_protected_exclusions : [for a in names : "${name}.${a}"]]))}."
    }
  }

  # The table map is written before a function that checks it against TABLES_SHA256 starts.
  depends_on = [aws_cloudwatch_log_group.forwarder, aws_iam_role_policy.forwarder, aws_ssm_parameter.table]
}

resource "aws_lambda_function" "replicator" {
  #checkov:skip=CKV_AWS_116:Invoked only by a stream event source mapping, which ignores a function DLQ; poison messages go to the failure queue (FAILURE_QUEUE_URL) and failed batches to the mapping's on-failure destination.
  #checkov:skip=CKV_AWS_272:No signing profile exists in either partition for these zips; they are built reproducibly by `make package` and pinned by source_code_hash. Adopters with AWS Signer can add a code signing config.
  function_name = local.replicator_name
  description   = substr("Inbox ${local.inbox_stream_name} -> ${join(", ", sort(keys(local.tables)))}", 0, 256)
  role          = aws_iam_role.replicator.arn

  filename         = local.replicator_zip_path
  source_code_hash = filebase64sha256(local.replicator_zip_path)
  handler          = "app.handler"
  runtime          = var.lambda_runtime
  architectures    = [var.lambda_architecture]
  memory_size      = var.replicator_memory_size
  timeout          = var.replicator_timeout

  reserved_concurrent_executions = var.replicator_reserved_concurrency
  kms_key_arn                    = local.kms_key_arn

  environment {
    variables = local.replicator_environment
  }

  dynamic "vpc_config" {
    for_each = var.replicator_in_vpc && local.forwarder_in_vpc ? [true] : []
    content {
      subnet_ids         = local.lambda_subnet_ids
      security_group_ids = local.lambda_security_group_ids
    }
  }

  tracing_config {
    mode = var.tracing_mode
  }

  tags = local.tags

  depends_on = [aws_cloudwatch_log_group.replicator, aws_iam_role_policy.replicator, aws_ssm_parameter.table]
}

################################################################################
# Event source mappings: each table's stream -> the forwarder, inbox -> replicator
################################################################################

resource "aws_lambda_event_source_mapping" "forwarder" {
  for_each = local.tables

  function_name     = aws_lambda_function.forwarder.arn
  event_source_arn  = local.table_stream_arns[each.key]
  starting_position = var.starting_position

  batch_size                         = var.forwarder_batch_size
  maximum_batching_window_in_seconds = local.forwarder_batching_window_seconds
  parallelization_factor             = var.forwarder_parallelization_factor
  maximum_retry_attempts             = var.forwarder_maximum_retry_attempts
  maximum_record_age_in_seconds      = var.forwarder_maximum_record_age_seconds
  bisect_batch_on_function_error     = true
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.failures.arn
    }
  }

  # The role must be able to read the stream and send to the queue before the mapping is created.
  depends_on = [aws_iam_role_policy.forwarder]
}

resource "aws_lambda_event_source_mapping" "replicator" {
  function_name = aws_lambda_function.replicator.arn
  # low_latency: the enhanced fan-out consumer's ARN, so Lambda subscribes to each shard (SubscribeToShard)
  # and the inbox pushes records instead of being polled once a second.
  event_source_arn  = local.low_latency ? aws_kinesis_stream_consumer.replicator[0].arn : aws_kinesis_stream.inbox.arn
  starting_position = var.starting_position

  batch_size                         = var.replicator_batch_size
  maximum_batching_window_in_seconds = var.replicator_batching_window_seconds
  parallelization_factor             = var.replicator_parallelization_factor
  maximum_retry_attempts             = var.replicator_maximum_retry_attempts
  maximum_record_age_in_seconds      = var.replicator_maximum_record_age_seconds
  bisect_batch_on_function_error     = true
  function_response_types            = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.failures.arn
    }
  }

  depends_on = [aws_iam_role_policy.replicator]
}
