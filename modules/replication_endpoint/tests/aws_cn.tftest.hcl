# Plan-only tests in the aws-cn partition: ARNs, service names and least-privilege policies.

mock_provider "aws" {
  override_during = plan

  mock_data "aws_partition" {
    defaults = { partition = "aws-cn", dns_suffix = "amazonaws.com.cn" }
  }
  mock_data "aws_region" {
    defaults = { name = "cn-north-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_availability_zones" {
    defaults = { names = ["cn-north-1a", "cn-north-1b", "cn-north-1d"] }
  }
  mock_data "aws_service_principal" {
    defaults = { name = "lambda.amazonaws.com" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws-cn:kms:cn-north-1:123456789012:key/11111111-2222-3333-4444-555555555555" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:ddbrep/peer-credentials-AbCdEf" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = {
      arn = "arn:aws-cn:sqs:cn-north-1:123456789012:ddbrep-failures"
      url = "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/ddbrep-failures"
    }
  }
  mock_resource "aws_kinesis_stream" {
    defaults = { arn = "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/ddbrep-inbox" }
  }
  mock_resource "aws_dynamodb_table" {
    defaults = { stream_arn = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/ddbrep-table/stream/2026-01-01T00:00:00.000" }
  }
  mock_resource "aws_subnet" {
    defaults = { id = "subnet-0123456789abcdef0" }
  }
  mock_resource "aws_security_group" {
    defaults = { id = "sg-0123456789abcdef0" }
  }
}

variables {
  forwarder_zip_path  = "tests/fixtures/forwarder.zip"
  replicator_zip_path = "tests/fixtures/replicator.zip"
  peer_region         = "us-east-1"
  tables              = { table = {} }
  # These runs check the peer-writer user's group policy: access_key mode (roles_anywhere.tftest.hcl
  # checks the role of the default mode in both partitions).
  peer_writer_authentication = "access_key"
}

run "partition_correct_arns" {
  command = plan

  assert {
    condition = alltrue([for p in [aws_iam_role_policy.forwarder.policy, aws_iam_role_policy.replicator.policy, aws_iam_group_policy.peer_writer[0].policy, aws_kms_key.this[0].policy, aws_iam_role_policy.flow_logs[0].policy] :
      !strcontains(p, "arn:aws:") && strcontains(p, "arn:aws-cn:")
    ])
    error_message = "Every ARN the module builds is in the aws-cn partition."
  }
  assert {
    condition = alltrue([for s in concat(
      jsondecode(aws_iam_role_policy.forwarder.policy).Statement,
      jsondecode(aws_iam_role_policy.replicator.policy).Statement,
      jsondecode(aws_iam_group_policy.peer_writer[0].policy).Statement,
    ) : alltrue([for r in flatten([s.Resource]) : r == "*" || startswith(r, "arn:aws-cn:")])])
    error_message = "Policy resources are aws-cn ARNs."
  }
  assert {
    condition = alltrue([for s in concat(jsondecode(aws_iam_role_policy.forwarder.policy).Statement, jsondecode(aws_iam_role_policy.replicator.policy).Statement) :
      alltrue([for v in flatten(values(try(s.Condition.StringEquals, {}))) : endswith(v, ".cn-north-1.amazonaws.com.cn")])
    ])
    error_message = "kms:ViaService conditions name the China endpoints."
  }
  assert {
    condition     = contains(jsondecode(aws_kms_key.this[0].policy).Statement[*].Principal, { Service = "logs.cn-north-1.amazonaws.com.cn" })
    error_message = "The key policy names the China CloudWatch Logs principal."
  }
  assert {
    condition     = jsondecode(aws_kms_key.this[0].policy).Statement[0].Principal.AWS == "arn:aws-cn:iam::123456789012:root"
    error_message = "The key's account statement uses the aws-cn root ARN."
  }
  assert {
    condition     = aws_lambda_function.forwarder.environment[0].variables["PEER_REGION"] == "us-east-1"
    error_message = "The peer of this cn-north-1 side is us-east-1."
  }
}

run "least_privilege" {
  command = plan

  assert {
    condition = alltrue([for s in concat(
      jsondecode(aws_iam_role_policy.forwarder.policy).Statement,
      jsondecode(aws_iam_role_policy.replicator.policy).Statement,
      jsondecode(aws_iam_group_policy.peer_writer[0].policy).Statement,
    ) : alltrue([for a in flatten([s.Action]) : !strcontains(a, "*")])])
    error_message = "No wildcard actions."
  }
  assert {
    condition = alltrue([for s in concat(
      jsondecode(aws_iam_role_policy.forwarder.policy).Statement,
      jsondecode(aws_iam_role_policy.replicator.policy).Statement,
      jsondecode(aws_iam_group_policy.peer_writer[0].policy).Statement,
      ) : !contains(flatten([s.Resource]), "*") || alltrue([for a in flatten([s.Action]) :
        contains(["dynamodb:ListStreams", "kinesis:ListStreams", "ec2:DescribeNetworkInterfaces"], a)
    ])])
    error_message = "A \"*\" resource only for actions that have no resource-level permission."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_role_policy.forwarder.policy).Statement : s.Action])) == toset([
      "logs:CreateLogStream", "logs:PutLogEvents",
      "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
      "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem", "dynamodb:PutItem",
      "dynamodb:ConditionCheckItem", "secretsmanager:GetSecretValue", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "sqs:SendMessage",
      "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses", "ec2:DescribeNetworkInterfaces", "ssm:GetParametersByPath",
    ])
    error_message = "The forwarder has exactly the calls of the architecture contract."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_role_policy.replicator.policy).Statement : s.Action])) == toset([
      "logs:CreateLogStream", "logs:PutLogEvents",
      "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords", "kinesis:GetShardIterator",
      "kinesis:ListShards", "kinesis:ListStreams", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
      "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem",
      "dynamodb:ConditionCheckItem", "sqs:SendMessage", "ssm:GetParametersByPath",
    ])
    error_message = "The replicator has exactly the calls of the architecture contract."
  }
  assert {
    condition = alltrue([for policy in [aws_iam_role_policy.forwarder.policy, aws_iam_role_policy.replicator.policy] :
      toset(flatten([for s in jsondecode(policy).Statement : s.Resource if contains(flatten([s.Action]), "ssm:GetParametersByPath")])) == toset([
        "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/ddb-replication/ddbrep/tables",
      ])
    ])
    error_message = "Both functions read the table map by its path only, in the aws-cn partition."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_role_policy.forwarder.policy).Statement : s.Resource if contains(flatten([s.Action]), "dynamodb:UpdateItem")])) == toset([
      "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/ddbrep-table",
    ])
    error_message = "The forwarder stamps only its own table."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_role_policy.replicator.policy).Statement : s.Resource if contains(flatten([s.Action]), "dynamodb:PutItem")])) == toset([
      "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/ddbrep-table",
      "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/ddbrep-tombstones",
    ])
    error_message = "The replicator writes only its table and tombstones."
  }
  assert {
    condition = {
      for a in ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"] :
      a => toset(flatten([for s in jsondecode(aws_iam_role_policy.replicator.policy).Statement : s.Resource if contains(flatten([s.Action]), a)]))
      } == {
      "dynamodb:PutItem"            = toset(["arn:aws-cn:dynamodb:cn-north-1:123456789012:table/ddbrep-table", "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/ddbrep-tombstones"])
      "dynamodb:UpdateItem"         = toset(["arn:aws-cn:dynamodb:cn-north-1:123456789012:table/ddbrep-table"])
      "dynamodb:DeleteItem"         = toset(["arn:aws-cn:dynamodb:cn-north-1:123456789012:table/ddbrep-table"])
      "dynamodb:ConditionCheckItem" = toset(["arn:aws-cn:dynamodb:cn-north-1:123456789012:table/ddbrep-tombstones"])
    }
    error_message = "The replicator marks and deletes items in its table only, and only checks and writes tombstones."
  }
  assert {
    condition     = one([for s in jsondecode(aws_iam_role_policy.forwarder.policy).Statement : s.Resource if s.Action == "secretsmanager:GetSecretValue"]) == aws_secretsmanager_secret.peer_credentials.arn
    error_message = "The forwarder reads only its own secret."
  }
  assert {
    condition     = alltrue([for s in jsondecode(aws_iam_role_policy.forwarder.policy).Statement : length(flatten([try(s.Condition.StringEquals["kms:ViaService"], [])])) > 0 if startswith(one(distinct([for a in flatten([s.Action]) : split(":", a)[0]])), "kms")])
    error_message = "Every KMS permission of the forwarder is bound to a service through kms:ViaService."
  }
}

run "peer_writer_only_writes_inbox" {
  command = plan

  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_group_policy.peer_writer[0].policy).Statement : s.Action])) == toset([
      "kinesis:PutRecord", "kinesis:PutRecords", "kms:GenerateDataKey",
    ])
    error_message = "The peer writer may only put records (and encrypt them)."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_group_policy.peer_writer[0].policy).Statement : s.Resource])) == toset([
      "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/ddbrep-inbox",
      aws_kms_key.this[0].arn,
    ])
    error_message = "The peer writer's permissions name this side's inbox and its key only."
  }
  assert {
    condition     = aws_iam_user_group_membership.peer_writer[0].groups == toset([aws_iam_group.peer_writer[0].name]) && aws_iam_user.peer_writer[0].name == "ddbrep-peer-writer"
    error_message = "The peer writer gets its permission through its group only."
  }
}

run "bring_your_own_network" {
  command = plan

  variables {
    create_vpc         = false
    subnet_ids         = ["subnet-aaaa", "subnet-bbbb"]
    security_group_ids = ["sg-cccc"]
  }

  assert {
    condition     = length(aws_vpc.this) == 0 && length(aws_nat_gateway.this) == 0 && length(aws_eip.nat) == 0 && length(aws_flow_log.this) == 0
    error_message = "No VPC is created when subnets are brought."
  }
  assert {
    condition     = aws_lambda_function.forwarder.vpc_config[0].subnet_ids == toset(["subnet-aaaa", "subnet-bbbb"]) && aws_lambda_function.forwarder.vpc_config[0].security_group_ids == toset(["sg-cccc"])
    error_message = "The forwarder runs in the given subnets and security groups."
  }
  assert {
    condition = toset(one([for s in jsondecode(aws_iam_role_policy.forwarder.policy).Statement : s.Resource if s.Action == "ec2:CreateNetworkInterface"])) == toset([
      "arn:aws-cn:ec2:cn-north-1:123456789012:network-interface/*",
      "arn:aws-cn:ec2:cn-north-1:123456789012:subnet/subnet-aaaa",
      "arn:aws-cn:ec2:cn-north-1:123456789012:subnet/subnet-bbbb",
      "arn:aws-cn:ec2:cn-north-1:123456789012:security-group/sg-cccc",
    ])
    error_message = "ENI creation is scoped to the given subnets and security groups."
  }
}

run "no_vpc_at_all" {
  command = plan

  variables {
    create_vpc = false
  }

  assert {
    condition     = length(aws_lambda_function.forwarder.vpc_config) == 0
    error_message = "Without a VPC and without subnets the forwarder runs outside any VPC."
  }
  assert {
    condition     = !strcontains(aws_iam_role_policy.forwarder.policy, "ec2:")
    error_message = "Outside a VPC the forwarder gets no EC2 permission."
  }
}

run "existing_table" {
  command = plan

  variables {
    tables = { orders = { create = false, table_name = "orders" } }
  }

  override_data {
    target = data.aws_dynamodb_table.existing["orders"]
    values = {
      stream_enabled   = true
      stream_view_type = "NEW_AND_OLD_IMAGES"
      stream_arn       = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"
      hash_key         = "order_id"
      range_key        = "line"
      attribute        = [{ name = "order_id", type = "S" }, { name = "line", type = "N" }, { name = "gsi_pk", type = "S" }]
    }
  }

  assert {
    condition     = length(aws_dynamodb_table.this) == 0 && aws_lambda_event_source_mapping.forwarder["orders"].event_source_arn == "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"
    error_message = "An existing table is used, not created, and its stream feeds the forwarder."
  }
  assert {
    condition     = strcontains(aws_iam_role_policy.forwarder.policy, "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/orders/stream/*")
    error_message = "The forwarder reads the existing table's stream."
  }
  assert {
    condition = jsondecode(aws_ssm_parameter.table["orders"].value).key_schema == [
      { AttributeName = "order_id", KeyType = "HASH", AttributeType = "S" },
      { AttributeName = "line", KeyType = "RANGE", AttributeType = "N" },
    ]
    error_message = "The replicator checks keys against the existing table's own key schema."
  }
}

run "existing_table_without_stream" {
  command = plan

  variables {
    tables = { orders = { create = false, table_name = "orders" } }
  }

  override_data {
    target = data.aws_dynamodb_table.existing["orders"]
    values = {
      stream_enabled   = true
      stream_view_type = "KEYS_ONLY"
    }
  }

  expect_failures = [data.aws_dynamodb_table.existing["orders"]]
}

run "active_tracing" {
  command = plan

  variables {
    tracing_mode = "Active"
  }

  assert {
    condition     = aws_lambda_function.forwarder.tracing_config[0].mode == "Active" && strcontains(aws_iam_role_policy.forwarder.policy, "xray:PutTraceSegments")
    error_message = "Active tracing adds the X-Ray write permission."
  }
}

run "peer_writer_source_allowlist" {
  command = plan

  variables {
    peer_writer_allowed_source_ips = ["203.0.113.10/32"]
  }

  assert {
    condition     = jsondecode(aws_iam_group_policy.peer_writer[0].policy).Statement[0].Condition.IpAddress["aws:SourceIp"] == ["203.0.113.10/32"]
    error_message = "The peer writer may only write from the allowlisted addresses."
  }
}

run "an_existing_and_a_created_table_through_one_endpoint" {
  command = plan

  variables {
    tables = {
      orders   = { create = false, table_name = "orders" }
      profiles = {}
    }
  }

  override_data {
    target = data.aws_dynamodb_table.existing["orders"]
    values = {
      stream_enabled   = true
      stream_view_type = "NEW_AND_OLD_IMAGES"
      stream_arn       = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"
      hash_key         = "order_id"
      range_key        = ""
      attribute        = [{ name = "order_id", type = "N" }]
    }
  }

  assert {
    condition     = keys(aws_dynamodb_table.this) == ["profiles"] && toset(keys(aws_lambda_event_source_mapping.forwarder)) == toset(["orders", "profiles"])
    error_message = "Only the table to create is created; both tables' streams feed the forwarder."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_role_policy.forwarder.policy).Statement : s.Resource if contains(flatten([s.Action]), "dynamodb:UpdateItem")])) == toset([
      "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/orders", "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/ddbrep-profiles",
    ])
    error_message = "The forwarder stamps exactly its tables, by partition-built ARNs."
  }
}
