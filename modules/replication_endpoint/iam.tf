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
      Sid       = "EncryptFailureQueueMessages"
      Effect    = "Allow"
      Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
      Resource  = local.kms_key_arn
      Condition = { StringEquals = { "kms:ViaService" = local.via_service["sqs"] } }
    },
  ]

  # The tables (and so the table's stream) are encrypted with the module's key: DynamoDB uses it on
  # the caller's behalf. Stream reads are listed under both DynamoDB endpoints.
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
          Sid      = "WriteLogs"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = "${local.log_group_arn_base}${local.forwarder_log_group_name}:*"
        },
        {
          Sid      = "ReadTableStream"
          Effect   = "Allow"
          Action   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
          Resource = local.table_streams_arn
        },
        {
          # ListStreams has no resource-level permission.
          Sid      = "ListTableStreams"
          Effect   = "Allow"
          Action   = "dynamodb:ListStreams"
          Resource = "*"
        },
        {
          # In-place version stamps of unversioned local writes; removal of an item a local delete wins over.
          Sid      = "StampTable"
          Effect   = "Allow"
          Action   = ["dynamodb:UpdateItem", "dynamodb:DeleteItem"]
          Resource = local.table_arn
        },
        {
          Sid      = "RecordTombstones"
          Effect   = "Allow"
          Action   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem"]
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
          Sid      = "WriteLogs"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = "${local.log_group_arn_base}${local.replicator_log_group_name}:*"
        },
        {
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
          # TransactWriteItems needs the per-item actions.
          Sid      = "ApplyChanges"
          Effect   = "Allow"
          Action   = ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem"]
          Resource = [local.table_arn, local.tombstone_table_arn]
        },
        local.table_key_statement,
      ],
      local.failure_queue_statements,
      [for s in local.vpc_access_statements : s if var.replicator_in_vpc && local.forwarder_in_vpc],
      local.xray_statements,
    )
  }

  # ENI management for a function in a VPC, scoped to this account and region, and to the
  # function's subnets and security groups where EC2 allows it.
  vpc_access_statements = [
    {
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
      Sid      = "ManageNetworkInterfaces"
      Effect   = "Allow"
      Action   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
      Resource = "${local.arn_prefix}:ec2:${local.region}:${local.account_id}:network-interface/*"
    },
    {
      # Describe calls have no resource-level permission.
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
