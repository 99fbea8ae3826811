# Plan-only tests of the module's wiring with its defaults (aws partition, created table and VPC).
# Computed values the assertions need are mocked with `override_during = plan` (Terraform >= 1.11).

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks/us-east-1"
}

variables {
  forwarder_zip_path  = "tests/fixtures/forwarder.zip"
  replicator_zip_path = "tests/fixtures/replicator.zip"
  # A single table is the map with one entry.
  tables = { table = {} }
  # The default peer_writer_authentication, roles_anywhere, needs the pair's CA certificate.
  roles_anywhere_ca_certificate = file("tests/fixtures/pair-ca.pem")
}

run "table_stream_and_tombstones" {
  command = plan

  assert {
    condition     = aws_dynamodb_table.this["table"].stream_enabled && aws_dynamodb_table.this["table"].stream_view_type == "NEW_AND_OLD_IMAGES"
    error_message = "The created table must have a NEW_AND_OLD_IMAGES stream."
  }
  assert {
    condition     = aws_dynamodb_table.this["table"].billing_mode == "PAY_PER_REQUEST" && aws_dynamodb_table.this["table"].hash_key == "pk"
    error_message = "The created table is on demand with hash key pk by default."
  }
  assert {
    condition     = aws_dynamodb_table.tombstones.hash_key == "k" && one([for a in aws_dynamodb_table.tombstones.attribute : a.type if a.name == "k"]) == "S"
    error_message = "The tombstone table's hash key is k (String)."
  }
  assert {
    condition     = aws_dynamodb_table.tombstones.ttl[0].enabled && aws_dynamodb_table.tombstones.ttl[0].attribute_name == "expires_at"
    error_message = "The tombstone table expires items by expires_at."
  }
  assert {
    condition     = aws_dynamodb_table.this["table"].deletion_protection_enabled && aws_dynamodb_table.this["table"].point_in_time_recovery[0].enabled
    error_message = "The created table is protected from deletion and backed up by default."
  }
}

run "encryption_everywhere" {
  command = plan

  assert {
    condition     = aws_kms_key.this[0].enable_key_rotation
    error_message = "The module's key rotates."
  }
  assert {
    condition     = aws_kinesis_stream.inbox.encryption_type == "KMS" && aws_kinesis_stream.inbox.kms_key_id == aws_kms_key.this[0].arn
    error_message = "The inbox is encrypted with the module's key."
  }
  assert {
    condition     = aws_sqs_queue.failures.kms_master_key_id == aws_kms_key.this[0].arn
    error_message = "The failure queue is encrypted with the module's key."
  }
  assert {
    condition     = aws_secretsmanager_secret.peer_credentials.kms_key_id == aws_kms_key.this[0].arn
    error_message = "The secret is encrypted with the module's key."
  }
  assert {
    condition     = alltrue([for t in [aws_dynamodb_table.this["table"], aws_dynamodb_table.tombstones] : t.server_side_encryption[0].enabled && t.server_side_encryption[0].kms_key_arn == aws_kms_key.this[0].arn])
    error_message = "Both tables are encrypted with the module's key."
  }
  assert {
    condition     = alltrue([for g in [aws_cloudwatch_log_group.forwarder, aws_cloudwatch_log_group.replicator, aws_cloudwatch_log_group.flow_logs[0]] : g.kms_key_id == aws_kms_key.this[0].arn && g.retention_in_days == 30])
    error_message = "Log groups are encrypted and keep 30 days by default."
  }
  assert {
    condition     = aws_lambda_function.forwarder.kms_key_arn == aws_kms_key.this[0].arn && aws_lambda_function.replicator.kms_key_arn == aws_kms_key.this[0].arn
    error_message = "The functions' environments are encrypted with the module's key."
  }
  assert {
    condition     = contains(jsondecode(aws_kms_key.this[0].policy).Statement[*].Principal, { Service = "logs.us-east-1.amazonaws.com" })
    error_message = "The key policy lets the regional CloudWatch Logs principal encrypt the log groups."
  }
}

run "secret_value_not_set_by_default" {
  command = plan

  assert {
    condition     = length(aws_secretsmanager_secret_version.peer_credentials) == 0
    error_message = "By default Terraform must not write a secret value (it would land in the state)."
  }
  assert {
    condition     = aws_secretsmanager_secret.peer_credentials.name == "ddbrep/peer-credentials"
    error_message = "The secret is named after the prefix."
  }
}

run "secret_value_when_given" {
  command = plan

  variables {
    peer_writer_authentication = "access_key"
    peer_credentials           = { aws_access_key_id = "AKIAEXAMPLE", aws_secret_access_key = "example" }
  }

  assert {
    condition     = length(aws_secretsmanager_secret_version.peer_credentials) == 1
    error_message = "An explicitly given peer key is stored as the secret's value."
  }
}

run "mapping_failure_settings" {
  command = plan

  assert {
    condition = alltrue([for m in [aws_lambda_event_source_mapping.forwarder["table"], aws_lambda_event_source_mapping.replicator] :
      m.function_response_types == toset(["ReportBatchItemFailures"]) &&
      m.bisect_batch_on_function_error &&
      m.maximum_retry_attempts == -1 &&
      m.maximum_record_age_in_seconds == 21600 &&
      m.starting_position == "TRIM_HORIZON" &&
      m.parallelization_factor == 1 &&
      m.destination_config[0].on_failure[0].destination_arn == aws_sqs_queue.failures.arn
    ])
    error_message = "Both mappings report item failures, bisect, retry until 6 h of record age and send failed batches to the failure queue."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.forwarder["table"].event_source_arn == aws_dynamodb_table.this["table"].stream_arn
    error_message = "The forwarder reads the table's stream."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.replicator.event_source_arn == aws_kinesis_stream.inbox.arn
    error_message = "The replicator reads the inbox."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.forwarder["table"].batch_size == 500 && aws_lambda_event_source_mapping.forwarder["table"].maximum_batching_window_in_seconds == 1
    error_message = "Forwarder batches fill one PutRecords call."
  }
  assert {
    condition     = aws_sqs_queue.failures.message_retention_seconds == 1209600
    error_message = "The failure queue keeps messages 14 days."
  }
}

run "functions" {
  command = plan

  assert {
    condition = alltrue([for f in [aws_lambda_function.forwarder, aws_lambda_function.replicator] :
      f.handler == "app.handler" && f.runtime == "python3.12" && f.source_code_hash == filebase64sha256("tests/fixtures/${trimprefix(f.function_name, "ddbrep-")}.zip")
    ])
    error_message = "Both functions run app.handler on python3.12 from their zips."
  }
  assert {
    condition = (
      aws_lambda_function.forwarder.environment[0].variables["PEER_REGION"] == "us-east-1" &&
      aws_lambda_function.forwarder.environment[0].variables["PEER_STREAM_NAME"] == "ddbrep-inbox" &&
      aws_lambda_function.forwarder.environment[0].variables["PEER_SECRET_ID"] == aws_secretsmanager_secret.peer_credentials.arn &&
      aws_lambda_function.forwarder.environment[0].variables["TABLES_PARAMETER_PATH"] == "/ddb-replication/ddbrep/tables" &&
      aws_lambda_function.forwarder.environment[0].variables["TABLES_SHA256"] == aws_lambda_function.replicator.environment[0].variables["TABLES_SHA256"] &&
      aws_lambda_function.forwarder.environment[0].variables["TOMBSTONE_TABLE_NAME"] == "ddbrep-tombstones" &&
      aws_lambda_function.forwarder.environment[0].variables["POWERTOOLS_METRICS_NAMESPACE"] == "DynamoDBReplication"
    )
    error_message = "The forwarder's environment follows the Lambda contract."
  }
  assert {
    condition     = !contains(keys(aws_lambda_function.forwarder.environment[0].variables), "PEER_ENDPOINT_URL") && !contains(keys(aws_lambda_function.forwarder.environment[0].variables), "PEER_HTTPS_PROXY")
    error_message = "Unset optional settings are left out of the environment."
  }
  assert {
    condition = (
      aws_lambda_function.replicator.environment[0].variables["FAILURE_QUEUE_URL"] == aws_sqs_queue.failures.url &&
      aws_lambda_function.replicator.environment[0].variables["APPLY_CONCURRENCY"] == "16" &&
      { for name, p in aws_ssm_parameter.table : name => jsondecode(p.value) } == {
        table = {
          table_name            = "ddbrep-table"
          table_arn             = "arn:aws:dynamodb:us-east-1:111122223333:table/ddbrep-table"
          peer_table_name       = "ddbrep-table"
          replicate_ttl_deletes = false
          key_schema            = [{ AttributeName = "pk", KeyType = "HASH", AttributeType = "S" }]
          residency             = null
        }
      }
    )
    error_message = "The replicator's environment follows the Lambda contract, and the table map in Parameter Store holds the created table's key schema."
  }
  assert {
    condition     = aws_lambda_function.forwarder.environment[0].variables["FAILURE_QUEUE_URL"] == aws_sqs_queue.failures.url
    error_message = "The forwarder sends stream records whose local write DynamoDB refuses to the failure queue."
  }
  assert {
    condition     = aws_lambda_function.forwarder.vpc_config[0].subnet_ids == toset(aws_subnet.private[*].id) && length(aws_lambda_function.replicator.vpc_config) == 0
    error_message = "The forwarder runs in the private subnets, the replicator outside the VPC."
  }
}

run "clock_skew_bound" {
  command = plan

  assert {
    condition = alltrue([for f in [aws_lambda_function.forwarder, aws_lambda_function.replicator] :
    f.environment[0].variables["MAX_CLOCK_SKEW_SECONDS"] == "300"])
    error_message = "Both functions bound versions to 300 s ahead of their clock by default."
  }
  assert {
    condition     = aws_lambda_function.forwarder.environment[0].variables["FAILURE_QUEUE_URL"] == aws_sqs_queue.failures.url
    error_message = "The forwarder reports items that cannot carry a version to the failure queue."
  }
}

run "clock_skew_bound_set" {
  command = plan

  variables {
    max_clock_skew_seconds = 60
  }

  assert {
    condition = alltrue([for f in [aws_lambda_function.forwarder, aws_lambda_function.replicator] :
    f.environment[0].variables["MAX_CLOCK_SKEW_SECONDS"] == "60"])
    error_message = "max_clock_skew_seconds reaches both functions."
  }
}

run "rejects_clock_skew_of_zero" {
  command = plan

  variables {
    max_clock_skew_seconds = 0
  }

  expect_failures = [var.max_clock_skew_seconds]
}

run "rejects_clock_skew_in_milliseconds" {
  command = plan

  variables {
    max_clock_skew_seconds = 300000
  }

  expect_failures = [var.max_clock_skew_seconds]
}

run "rejects_fractional_clock_skew" {
  command = plan

  variables {
    max_clock_skew_seconds = 2.5
  }

  expect_failures = [var.max_clock_skew_seconds]
}

run "peer_endpoint_and_proxy" {
  command = plan

  variables {
    peer_endpoint_url = "https://kinesis.vpce.example"
    peer_https_proxy  = "http://proxy.internal:443"
  }

  assert {
    condition = (
      aws_lambda_function.forwarder.environment[0].variables["PEER_ENDPOINT_URL"] == "https://kinesis.vpce.example" &&
      aws_lambda_function.forwarder.environment[0].variables["PEER_HTTPS_PROXY"] == "http://proxy.internal:443"
    )
    error_message = "peer_endpoint_url and peer_https_proxy reach the forwarder."
  }
}

run "nat_vpc" {
  command = plan

  assert {
    condition     = length(aws_subnet.private) == 2 && length(aws_subnet.public) == 2 && length(toset(aws_subnet.private[*].availability_zone)) == 2
    error_message = "Public and private subnets span two zones."
  }
  assert {
    condition     = length(aws_nat_gateway.this) == 2 && length(aws_eip.nat) == 2 && alltrue([for e in aws_eip.nat : e.domain == "vpc"])
    error_message = "One NAT gateway with an Elastic IP per zone by default."
  }
  assert {
    condition     = alltrue([for s in aws_subnet.public : !s.map_public_ip_on_launch])
    error_message = "Public subnets hand out no public addresses."
  }
  assert {
    condition     = length(aws_security_group.forwarder[0].ingress) == 0 && length(aws_security_group.forwarder[0].egress) == 1 && alltrue([for e in aws_security_group.forwarder[0].egress : e.protocol == "tcp" && e.from_port == 443 && e.to_port == 443])
    error_message = "The forwarder's security group allows HTTPS out and nothing else."
  }
  assert {
    condition     = aws_vpc_endpoint.dynamodb[0].vpc_endpoint_type == "Gateway" && aws_vpc_endpoint.dynamodb[0].service_name == "com.amazonaws.us-east-1.dynamodb"
    error_message = "A DynamoDB gateway endpoint serves the private route tables."
  }
  assert {
    condition     = length(aws_default_security_group.this) == 1
    error_message = "The default security group is taken over (and so emptied)."
  }
  assert {
    condition     = aws_flow_log.this[0].traffic_type == "ALL"
    error_message = "Flow logs are on."
  }
}

run "single_nat_gateway" {
  command = plan

  variables {
    single_nat_gateway = true
    az_count           = 3
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_eip.nat) == 1 && length(aws_route.private_nat) == 3
    error_message = "single_nat_gateway routes every zone through one NAT gateway."
  }
}

run "alarms_and_dashboard" {
  command = plan

  variables {
    create_sns_topic = true
  }

  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.this)) == toset(["forwarder-iterator-age", "replicator-iterator-age", "forwarder-errors", "replicator-errors", "failure-queue-depth", "poison-messages", "table-items-too-large-to-version", "table-versions-ahead-refused", "table-reserved-attributes-refused", "table-changes-refused", "forwarder-configuration-errors", "replicator-configuration-errors"])
    error_message = "Twelve alarms: iterator age, errors and configuration errors of both functions, failure queue depth, poison messages, and per table refused changes and the changes the engine cannot replicate (items too large to version, peer changes refused)."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["table-items-too-large-to-version"].metric_name == "ItemsTooLargeToVersion" &&
      aws_cloudwatch_metric_alarm.this["table-items-too-large-to-version"].dimensions == tomap({ service = "ddbrep-forwarder", table = "table" }) &&
      aws_cloudwatch_metric_alarm.this["table-versions-ahead-refused"].metric_name == "VersionsAheadRefused" &&
      aws_cloudwatch_metric_alarm.this["table-versions-ahead-refused"].dimensions == tomap({ service = "ddbrep-replicator", table = "table" }) &&
      aws_cloudwatch_metric_alarm.this["table-reserved-attributes-refused"].metric_name == "ReservedAttributesRefused" &&
      aws_cloudwatch_metric_alarm.this["table-reserved-attributes-refused"].dimensions == tomap({ service = "ddbrep-replicator", table = "table" }) &&
      alltrue([for k in ["table-items-too-large-to-version", "table-versions-ahead-refused", "table-reserved-attributes-refused"] : aws_cloudwatch_metric_alarm.this[k].threshold == 1])
    )
    error_message = "A single change the engine cannot replicate pages: items too large to version (forwarder), versions ahead and reserved names refused (replicator)."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["table-changes-refused"].metric_name == "ChangesRefused" &&
      aws_cloudwatch_metric_alarm.this["table-changes-refused"].dimensions == tomap({ service = "ddbrep-replicator", table = "table" }) &&
      aws_cloudwatch_metric_alarm.this["forwarder-configuration-errors"].metric_name == "ConfigurationErrors" &&
      aws_cloudwatch_metric_alarm.this["forwarder-configuration-errors"].dimensions == tomap({ service = "ddbrep-forwarder" }) &&
      aws_cloudwatch_metric_alarm.this["replicator-configuration-errors"].metric_name == "ConfigurationErrors" &&
      aws_cloudwatch_metric_alarm.this["replicator-configuration-errors"].dimensions == tomap({ service = "ddbrep-replicator" }) &&
      alltrue([for k in ["table-changes-refused", "forwarder-configuration-errors", "replicator-configuration-errors"] : aws_cloudwatch_metric_alarm.this[k].threshold == 1 && aws_cloudwatch_metric_alarm.this[k].evaluation_periods == 1])
    )
    error_message = "Refused changes and configuration errors of either function alarm at the first one."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["poison-messages"].namespace == "DynamoDBReplication" &&
      aws_cloudwatch_metric_alarm.this["poison-messages"].metric_name == "PoisonMessages" &&
      aws_cloudwatch_metric_alarm.this["poison-messages"].dimensions == tomap({ service = "ddbrep-replicator" })
    )
    error_message = "The poison alarm watches PoisonMessages of the replicator."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.this["forwarder-iterator-age"].metric_name == "IteratorAge" &&
      aws_cloudwatch_metric_alarm.this["forwarder-iterator-age"].dimensions == tomap({ FunctionName = "ddbrep-forwarder" }) &&
      aws_cloudwatch_metric_alarm.this["failure-queue-depth"].dimensions == tomap({ QueueName = "ddbrep-failures" })
    )
    error_message = "Iterator age and queue depth alarms watch the right function and queue."
  }
  assert {
    condition     = alltrue([for a in aws_cloudwatch_metric_alarm.this : a.alarm_actions == toset([aws_sns_topic.alarms[0].arn])])
    error_message = "Every alarm notifies the SNS topic."
  }
  assert {
    condition     = aws_sns_topic.alarms[0].kms_master_key_id == aws_kms_key.this[0].arn
    error_message = "The SNS topic is encrypted."
  }
  assert {
    condition     = alltrue([for m in ["ChangesForwarded", "ChangesApplied", "StaleDropped", "ReplicationLatency", "EchoesSuppressed", "BytesSent", "InvalidVersionsStamped", "VersionsAheadStamped", "ReservedAttributesStamped", "ItemsTooLargeToVersion", "VersionsAheadRefused", "ReservedAttributesRefused", "PoisonMessages", "ChangesRefused", "ConfigurationErrors", "TransientErrors", "ResidencyFiltered", "ResidencyRemovals", "ResidencyFilterErrors", "StreamToForwarderLatency", "ForwarderToInboxLatency", "InboxToApplyLatency"] : strcontains(aws_cloudwatch_dashboard.this[0].dashboard_body, "\"${m}\"")])
    error_message = "The dashboard shows the engine metrics."
  }
  assert {
    condition = alltrue([
      for w in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets : (
        [for m in w.properties.metrics : try(m[length(m) - 1].stat, w.properties.stat) if contains(["StreamToForwarderLatency", "ForwarderToInboxLatency", "InboxToApplyLatency", "ReplicationLatency"], m[1])] == ["p50", "p50", "p50", "p50", "p99"]
      ) if strcontains(w.properties.title, "lag by stage")
    ])
    error_message = "Each table's lag widget shows every stage at p50 and end to end (ReplicationLatency) at p50 and p99."
  }
  assert {
    condition = alltrue([
      for a in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets : alltrue([
        for b in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets :
        a == b || a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y
      ])
    ])
    error_message = "No two dashboard widgets overlap."
  }
}

run "name_prefix" {
  command = plan

  variables {
    name = "pair2"
  }

  assert {
    condition = alltrue([for n in [
      aws_kinesis_stream.inbox.name, aws_sqs_queue.failures.name, aws_lambda_function.forwarder.function_name,
      aws_lambda_function.replicator.function_name, aws_iam_role.forwarder.name, aws_iam_role.replicator.name,
      aws_iam_role.peer_writer[0].name, aws_rolesanywhere_trust_anchor.this[0].name, aws_rolesanywhere_profile.peer_writer[0].name,
      aws_dynamodb_table.tombstones.name, aws_secretsmanager_secret.peer_credentials.name,
      aws_cloudwatch_dashboard.this[0].dashboard_name,
    ] : startswith(n, "pair2")])
    error_message = "Every name starts with the prefix, so that two pairs fit one account."
  }
}

run "inbox_provisioned" {
  command = plan

  variables {
    inbox_stream_mode = "PROVISIONED"
    inbox_shard_count = 2
  }

  assert {
    condition     = aws_kinesis_stream.inbox.shard_count == 2 && aws_kinesis_stream.inbox.stream_mode_details[0].stream_mode == "PROVISIONED"
    error_message = "A provisioned inbox has the requested shards."
  }
}

run "inbox_on_demand_by_default" {
  command = plan

  assert {
    condition     = aws_kinesis_stream.inbox.shard_count == null && aws_kinesis_stream.inbox.stream_mode_details[0].stream_mode == "ON_DEMAND"
    error_message = "The inbox is on demand by default, without a shard count."
  }
}

run "rejects_single_zone" {
  command = plan

  variables {
    az_count = 1
  }

  expect_failures = [var.az_count]
}

run "rejects_a_fractional_secret_max_age" {
  command = plan

  variables {
    secret_max_age_seconds = 2.5
  }

  expect_failures = [var.secret_max_age_seconds]
}

run "rejects_a_negative_secret_max_age" {
  command = plan

  variables {
    secret_max_age_seconds = -1
  }

  expect_failures = [var.secret_max_age_seconds]
}

run "composite_key_schema_reaches_the_replicator" {
  command = plan

  variables {
    tables = { table = { key_schema = { hash_key = "tenant", hash_key_type = "B", range_key = "seq", range_key_type = "N" } } }
  }

  assert {
    condition = jsondecode(aws_ssm_parameter.table["table"].value).key_schema == [
      { AttributeName = "tenant", KeyType = "HASH", AttributeType = "B" },
      { AttributeName = "seq", KeyType = "RANGE", AttributeType = "N" },
    ]
    error_message = "The table's key_schema in its parameter lists the hash and the range key with their types."
  }
}

run "rejects_a_forwarder_timeout_too_short_for_one_put_records_attempt" {
  command = plan

  variables {
    forwarder_timeout = 20
  }

  expect_failures = [var.forwarder_timeout]
}

run "accepts_the_shortest_forwarder_timeout" {
  command = plan

  variables {
    forwarder_timeout = 30
  }

  assert {
    condition     = aws_lambda_function.forwarder.timeout == 30
    error_message = "30 s is long enough for one PutRecords attempt with the forwarder's margin."
  }
}

run "rejects_a_replicator_too_small_to_decode_any_forwarder_record" {
  command = plan

  variables {
    replicator_memory_size = 256
  }

  expect_failures = [var.replicator_memory_size]
}

run "rejects_a_record_limit_kinesis_does_not_have" {
  command = plan

  variables {
    peer_max_record_bytes = 11 * 1024 * 1024
  }

  expect_failures = [var.peer_max_record_bytes]
}

################################################################################
# Many tables through one endpoint
################################################################################

run "two_tables_through_one_endpoint" {
  command = plan

  variables {
    tables = {
      profiles = {
        key_schema      = { hash_key = "pk", range_key = "sk" }
        peer_table_name = "profiles-cn"
      }
      orders = {
        table_name             = "orders"
        key_schema             = { hash_key = "order_id", hash_key_type = "N" }
        billing_mode           = "PROVISIONED"
        read_capacity          = 10
        write_capacity         = 20
        ttl_attribute          = "expires_at"
        point_in_time_recovery = false
        deletion_protection    = false
        replicate_ttl_deletes  = true
      }
    }
  }

  assert {
    condition = (
      aws_dynamodb_table.this["profiles"].name == "ddbrep-profiles" && aws_dynamodb_table.this["profiles"].range_key == "sk" &&
      aws_dynamodb_table.this["orders"].name == "orders" && aws_dynamodb_table.this["orders"].billing_mode == "PROVISIONED" &&
      aws_dynamodb_table.this["orders"].write_capacity == 20 && aws_dynamodb_table.this["orders"].ttl[0].attribute_name == "expires_at" &&
      !aws_dynamodb_table.this["orders"].point_in_time_recovery[0].enabled && !aws_dynamodb_table.this["orders"].deletion_protection_enabled &&
      aws_dynamodb_table.this["profiles"].deletion_protection_enabled && aws_dynamodb_table.this["profiles"].point_in_time_recovery[0].enabled
    )
    error_message = "Each table is created with its own settings."
  }
  assert {
    condition     = toset(keys(aws_lambda_event_source_mapping.forwarder)) == toset(["profiles", "orders"]) && alltrue([for m in aws_lambda_event_source_mapping.forwarder : m.function_name == aws_lambda_function.forwarder.arn])
    error_message = "One event source mapping per table stream, all to the one forwarder."
  }
  assert {
    condition = { for name, p in aws_ssm_parameter.table : name => jsondecode(p.value) } == {
      profiles = {
        table_name            = "ddbrep-profiles"
        table_arn             = "arn:aws:dynamodb:us-east-1:111122223333:table/ddbrep-profiles"
        peer_table_name       = "profiles-cn"
        replicate_ttl_deletes = false
        key_schema            = [{ AttributeName = "pk", KeyType = "HASH", AttributeType = "S" }, { AttributeName = "sk", KeyType = "RANGE", AttributeType = "S" }]
        residency             = null
      }
      orders = {
        table_name            = "orders"
        table_arn             = "arn:aws:dynamodb:us-east-1:111122223333:table/orders"
        peer_table_name       = "orders"
        replicate_ttl_deletes = true
        key_schema            = [{ AttributeName = "order_id", KeyType = "HASH", AttributeType = "N" }]
        residency             = null
      }
    }
    error_message = "Each table's parameter carries its name, ARN, peer table (its own name when not given), key schema, TTL-delete policy and residency rules (null: none)."
  }
  assert {
    condition = alltrue([for arn in ["arn:aws:dynamodb:us-east-1:111122223333:table/ddbrep-profiles", "arn:aws:dynamodb:us-east-1:111122223333:table/orders"] :
      strcontains(aws_iam_role_policy.forwarder.policy, "\"${arn}/stream/*\"") && strcontains(aws_iam_role_policy.forwarder.policy, "\"${arn}\"") &&
      strcontains(aws_iam_role_policy.replicator.policy, "\"${arn}\"")
    ])
    error_message = "Both functions' policies name every table (and the forwarder every table's stream) by ARN."
  }
  assert {
    condition = alltrue([for name in ["profiles", "orders"] : alltrue([for alarm in ["items-too-large-to-version", "changes-refused", "versions-ahead-refused", "reserved-attributes-refused"] :
      aws_cloudwatch_metric_alarm.this["${name}-${alarm}"].dimensions["table"] == name
    ])])
    error_message = "Each table has its own alarms on its own metrics."
  }
  assert {
    condition     = toset([for w in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets : w.y if startswith(w.properties.title, "orders: ")]) == toset([0]) && toset([for w in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets : w.y if startswith(w.properties.title, "profiles: ")]) == toset([6])
    error_message = "The dashboard has a row per table."
  }
  assert {
    condition = alltrue([
      for a in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets : alltrue([
        for b in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets :
        a == b || a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y
      ])
    ])
    error_message = "No two dashboard widgets overlap."
  }
  assert {
    condition     = output.table_names == { profiles = "ddbrep-profiles", orders = "orders" } && output.peer_table_names == { profiles = "profiles-cn", orders = "orders" } && keys(output.table_stream_arns) == ["orders", "profiles"]
    error_message = "Outputs are maps by logical table."
  }
}

run "rejects_an_empty_table_map" {
  command = plan

  variables {
    tables = {}
  }

  expect_failures = [var.tables]
}

run "rejects_a_logical_name_the_tombstone_ids_cannot_hold" {
  command = plan

  variables {
    tables = { "a/b" = {} }
  }

  expect_failures = [var.tables]
}

run "rejects_a_key_type_dynamodb_does_not_have" {
  command = plan

  variables {
    tables = { table = { key_schema = { hash_key = "pk", hash_key_type = "BOOL" } } }
  }

  expect_failures = [var.tables]
}

run "rejects_an_unknown_billing_mode" {
  command = plan

  variables {
    tables = { table = { billing_mode = "ON_DEMAND" } }
  }

  expect_failures = [var.tables]
}

run "rejects_two_logical_tables_on_one_table" {
  command = plan

  variables {
    tables = { a = { table_name = "shared" }, b = { table_name = "shared" } }
  }

  expect_failures = [aws_lambda_function.forwarder]
}
