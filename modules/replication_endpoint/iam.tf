################################################################################
# One role per function, each with exactly the calls of the architecture contract
################################################################################

locals {
  lambda_assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = data.aws_service_principal.lambda.name }
      Action    = "sts:AssumeRole"
    }]
  })

  # Statements both functions need.
  failure_queue_statements = [
    {
      # The replicator sends poison messages; the Lambda service sends the mappings' on-failure
      # records with the function's role.
      Sid      = "SendToFailureQueue"
      Effect   = "Allow"
      Action   = "sqs:SendMessage"
      Resource = local.failure_queue_arn
    },
    {
      # SQS encrypts (GenerateDataKey) and checks (Decrypt) a message's data key with the sender's
      # permissions (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html).
      Sid       = "EncryptFailureQueueMessages"
      Effect    = "Allow"
      Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
      Resource  = local.kms_key_arn
      Condition = { StringEquals = { "kms:ViaService" = local.via_service["sqs"] } }
    },
  ]

  # The tables (and so the table's stream) are encrypted with the module's key: DynamoDB uses it on
  # the caller's behalf. Stream reads are listed under both DynamoDB endpoints.
  # Not exercised locally: kms:Decrypt, kms:Encrypt, kms:GenerateDataKey. The local environment does
  # not emulate DynamoDB's own use of a customer managed key (moto encrypts nothing), so no call there
  # needs this statement; AWS's key policy for DynamoDB keys names exactly these uses through DynamoDB.
  table_key_statement = {
    Sid      = "UseTableKey"
    Effect   = "Allow"
    Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    Resource = local.kms_key_arn
    Condition = { StringEquals = { "kms:ViaService" = [
      local.via_service["dynamodb"], "streams.${local.via_service["dynamodb"]}",
    ] } }
  }

  xray_statements = [for s in [{
    # X-Ray has no resource-level permissions.
    # Not exercised locally: xray:PutTraceSegments, xray:PutTelemetryRecords. Lambda's tracing sends
    # the segments; the local runner does not trace (and tracing_mode is PassThrough by default).
    Sid      = "WriteTraces"
    Effect   = "Allow"
    Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    Resource = "*"
  }] : s if var.tracing_mode == "Active"]

  forwarder_policy = {
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          # Not exercised locally: logs:CreateLogStream, logs:PutLogEvents. Lambda writes the
          # function's output to CloudWatch Logs with this role; the local runner writes it to files.
          Sid      = "WriteLogs"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = "${local.log_group_arn_base}${local.forwarder_log_group_name}:*"
        },
        {
          # Lambda's poller reads the stream with this role (the event source mapping).
          Sid      = "ReadTableStream"
          Effect   = "Allow"
          Action   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
          Resource = local.table_streams_arn # every table's stream
        },
        {
          # ListStreams has no resource-level permission.
          # Not exercised locally: dynamodb:ListStreams. Lambda requires it of an execution role with a
          # DynamoDB stream source (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/iam-policy-example-lamda-process-dynamodb-streams.html);
          # the local poller reads the stream by its ARN.
          Sid      = "ListTableStreams"
          Effect   = "Allow"
          Action   = "dynamodb:ListStreams"
          Resource = "*"
        },
        {
          # In-place version stamps of unversioned local writes and the engine's delete mark
          # (UpdateItem); local deletes' items read after their tombstones (BatchGetItem); removal of
          # an item a local delete wins over (DeleteItem); the version a write without one replaced,
          # put back (PutItem, TableWriter.restore).
          # Not exercised locally: dynamodb:DeleteItem. Only an older replicated upsert that recreated
          # an item between a local delete and its forwarding is removed: a race a run need not meet.
          # Not exercised locally: dynamodb:PutItem. Only a write that lowered an item's version and
          # was replaced by something older before its stamp is restored: a race a run need not meet.
          Sid      = "StampTable"
          Effect   = "Allow"
          Action   = ["dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:PutItem"]
          Resource = values(local.table_arns)
        },
        {
          # Tombstone look-ups (BatchGetItem), local deletes remembered (PutItem), and a restored
          # version checked against the remembered delete in its transaction (ConditionCheckItem).
          # Not exercised locally: dynamodb:ConditionCheckItem. Only a restore of an item that is
          # gone or without a version checks it (TableWriter.restore): a race a run need not meet.
          Sid      = "RecordTombstones"
          Effect   = "Allow"
          Action   = ["dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"]
          Resource = local.tombstone_table_arn
        },
        {
          Sid      = "ReadPeerCredentials"
          Effect   = "Allow"
          Action   = "secretsmanager:GetSecretValue"
          Resource = aws_secretsmanager_secret.peer_credentials.arn
        },
        {
          Sid       = "DecryptPeerCredentials"
          Effect    = "Allow"
          Action    = "kms:Decrypt"
          Resource  = local.kms_key_arn
          Condition = { StringEquals = { "kms:ViaService" = local.via_service["secretsmanager"] } }
        },
        local.table_key_statement,
        local.table_map_statement,
      ],
      local.failure_queue_statements,
      [for s in local.vpc_access_statements : s if local.forwarder_in_vpc],
      local.xray_statements,
    )
  }

  replicator_policy = {
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          # Not exercised locally: logs:CreateLogStream, logs:PutLogEvents. Lambda writes the
          # function's output to CloudWatch Logs with this role; the local runner writes it to files.
          Sid      = "WriteLogs"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = "${local.log_group_arn_base}${local.replicator_log_group_name}:*"
        },
        {
          # Lambda's poller reads the inbox with this role (the event source mapping).
          # Not exercised locally: kinesis:DescribeStream, kinesis:DescribeStreamSummary. Lambda needs
          # them to manage a Kinesis event source (https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-create.html);
          # the local poller lists the shards with ListShards.
          Sid    = "ReadInbox"
          Effect = "Allow"
          Action = [
            "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary",
            "kinesis:GetRecords",
            "kinesis:GetShardIterator",
            "kinesis:ListShards",
          ]
          Resource = local.inbox_stream_arn
        },
        {
          # ListStreams has no resource-level permission.
          # Not exercised locally: kinesis:ListStreams. Part of Lambda's execution-role permissions for
          # a Kinesis source (AWSLambdaKinesisExecutionRole); the local poller reads the inbox by its ARN.
          Sid      = "ListInboxStreams"
          Effect   = "Allow"
          Action   = "kinesis:ListStreams"
          Resource = "*"
        },
        {
          Sid       = "DecryptInbox"
          Effect    = "Allow"
          Action    = "kms:Decrypt"
          Resource  = local.kms_key_arn
          Condition = { StringEquals = { "kms:ViaService" = local.via_service["kinesis"] } }
        },
        {
          # Upserts (PutItem, also the Put inside TransactWriteItems, which IAM authorizes per item);
          # deletes: the engine marks the item (UpdateItem), then deletes it while marked (DeleteItem).
          Sid      = "ApplyChanges"
          Effect   = "Allow"
          Action   = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
          Resource = values(local.table_arns)
        },
        {
          # Replicated deletes and probe receipts (PutItem); a created item's tombstone read after
          # its put (BatchGetItem); a replicated upsert over an item without a version checks the
          # tombstone inside TransactWriteItems (ConditionCheckItem).
          # Not exercised locally: dynamodb:ConditionCheckItem. Only a peer's upsert that meets an
          # item written here without a version runs the transaction: a race a run need not meet.
          Sid      = "RecordTombstones"
          Effect   = "Allow"
          Action   = ["dynamodb:PutItem", "dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem"]
          Resource = local.tombstone_table_arn
        },
        local.table_key_statement,
        local.table_map_statement,
      ],
      local.merge_statements,
      local.inbox_consumer_statements,
      local.failure_queue_statements,
      [for s in local.vpc_access_statements : s if var.replicator_in_vpc && local.forwarder_in_vpc],
      local.xray_statements,
    )
  }

  # low_latency: Lambda reads the inbox through the enhanced fan-out consumer with the role: it describes
  # the consumer and subscribes to each shard with it (Lambda developer guide, "Using Lambda with Kinesis
  # Data Streams", execution role permissions; Kinesis Data Streams API reference, SubscribeToShard and
  # DescribeStreamConsumer: their resource is the consumer,
  # arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME/consumer/CONSUMER:CREATION_TIMESTAMP).
  inbox_consumer_statements = local.low_latency ? [
    {
      # Not exercised locally: kinesis:DescribeStreamConsumer, kinesis:SubscribeToShard. moto has no
      # SubscribeToShard (an HTTP/2 event stream); the local poller reads the consumer's stream with the
      # ReadInbox grants at the pace of a push (replication_ops/local/event_sources.py).
      Sid      = "ReadInboxThroughConsumer"
      Effect   = "Allow"
      Action   = ["kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"]
      Resource = "${local.inbox_stream_arn}/consumer/${local.replicator_name}:*"
    },
  ] : []

  # A peer's upsert of a table with excluded attributes is a merge: the replicator reads this side's
  # values of those attributes (GetItem, strongly consistent) to keep them (docs/residency.md). Only
  # on the tables that have some.
  merged_table_arns = [
    for name, arn in local.table_arns : arn
    if length(try(local.table_residency[name].excluded_attributes, [])) > 0
  ]
  merge_statements = length(local.merged_table_arns) == 0 ? [] : [
    {
      Sid      = "ReadKeptAttributes"
      Effect   = "Allow"
      Action   = "dynamodb:GetItem"
      Resource = local.merged_table_arns
    },
  ]

  # ENI management for a function in a VPC, scoped to this account and region, and to the
  # function's subnets and security groups where EC2 allows it.
  vpc_access_statements = [
    {
      # Not exercised locally: ec2:CreateNetworkInterface. Lambda manages the function's network
      # interfaces with its role; the local environment runs no VPC.
      Sid    = "CreateNetworkInterfaces"
      Effect = "Allow"
      Action = "ec2:CreateNetworkInterface"
      Resource = concat(
        ["${local.arn_prefix}:ec2:${local.region}:${local.account_id}:network-interface/*"],
        [for id in local.lambda_subnet_ids : "${local.arn_prefix}:ec2:${local.region}:${local.account_id}:subnet/${id}"],
        [for id in local.lambda_security_group_ids : "${local.arn_prefix}:ec2:${local.region}:${local.account_id}:security-group/${id}"],
      )
    },
    {
      # Not exercised locally: ec2:DeleteNetworkInterface, ec2:AssignPrivateIpAddresses,
      # ec2:UnassignPrivateIpAddresses. Lambda manages the function's network interfaces with its
      # role; the local environment runs no VPC.
      Sid      = "ManageNetworkInterfaces"
      Effect   = "Allow"
      Action   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
      Resource = "${local.arn_prefix}:ec2:${local.region}:${local.account_id}:network-interface/*"
    },
    {
      # Describe calls have no resource-level permission.
      # Not exercised locally: ec2:DescribeNetworkInterfaces. Lambda looks up the function's network
      # interfaces with its role; the local environment runs no VPC.
      Sid      = "DescribeNetworkInterfaces"
      Effect   = "Allow"
      Action   = "ec2:DescribeNetworkInterfaces"
      Resource = "*"
    },
  ]
}

resource "aws_iam_role" "forwarder" {
  name                 = local.forwarder_name
  description          = "Forwarder of ${var.name}: table stream -> peer inbox"
  assume_role_policy   = local.lambda_assume_role_policy
  max_session_duration = 3600

  tags = local.tags
}

resource "aws_iam_role_policy" "forwarder" {
  name   = "forwarder"
  role   = aws_iam_role.forwarder.id
  policy = jsonencode(local.forwarder_policy)
}

resource "aws_iam_role" "replicator" {
  name                 = local.replicator_name
  description          = "Replicator of ${var.name}: inbox -> local table"
  assume_role_policy   = local.lambda_assume_role_policy
  max_session_duration = 3600

  tags = local.tags
}

resource "aws_iam_role_policy" "replicator" {
  name   = "replicator"
  role   = aws_iam_role.replicator.id
  policy = jsonencode(local.replicator_policy)
}
