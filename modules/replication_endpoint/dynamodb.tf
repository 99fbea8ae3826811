################################################################################
# The replicated table: created here, or an existing one
################################################################################

locals {
  table_name = coalesce(var.table_name, "${var.name}-table")

  table_key_attributes = merge(
    { (var.table_key_schema.hash_key) = var.table_key_schema.hash_key_type },
    var.table_key_schema.range_key == null ? {} : { (var.table_key_schema.range_key) = var.table_key_schema.range_key_type },
  )

  table_stream_arn = var.create_table ? aws_dynamodb_table.this[0].stream_arn : data.aws_dynamodb_table.existing[0].stream_arn

  # The table's key schema in DynamoDB's terms, for the replicator (TABLE_KEY_SCHEMA): it checks every
  # change's key against it before writing. From the variable for a created table, from the table
  # itself for an existing one (no DescribeTable grant or cold-start call in the function).
  table_keys = var.create_table ? {
    hash_key  = var.table_key_schema.hash_key
    range_key = var.table_key_schema.range_key
    types     = local.table_key_attributes
    } : {
    hash_key  = data.aws_dynamodb_table.existing[0].hash_key
    range_key = data.aws_dynamodb_table.existing[0].range_key
    types     = { for a in data.aws_dynamodb_table.existing[0].attribute : a.name => a.type }
  }
  table_key_schema_elements = [
    for k in [["HASH", local.table_keys.hash_key], ["RANGE", local.table_keys.range_key]] :
    { AttributeName = k[1], KeyType = k[0], AttributeType = local.table_keys.types[k[1]] } if k[1] != null && k[1] != ""
  ]
}

resource "aws_dynamodb_table" "this" {
  count = var.create_table ? 1 : 0

  name         = local.table_name
  billing_mode = var.table_billing_mode
  hash_key     = var.table_key_schema.hash_key
  range_key    = var.table_key_schema.range_key

  read_capacity  = var.table_billing_mode == "PROVISIONED" ? var.table_read_capacity : null
  write_capacity = var.table_billing_mode == "PROVISIONED" ? var.table_write_capacity : null

  # The forwarder needs both images: the new one to forward, the old one to tell its own echoes apart.
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  deletion_protection_enabled = var.table_deletion_protection

  dynamic "attribute" {
    for_each = local.table_key_attributes
    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "ttl" {
    for_each = var.table_ttl_attribute == null ? [] : [true]
    content {
      enabled        = true
      attribute_name = var.table_ttl_attribute
    }
  }

  point_in_time_recovery {
    enabled = var.table_point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  tags = local.tags
}

data "aws_dynamodb_table" "existing" {
  count = var.create_table ? 0 : 1

  name = local.table_name

  lifecycle {
    postcondition {
      condition     = self.stream_enabled && self.stream_view_type == "NEW_AND_OLD_IMAGES"
      error_message = "Table ${local.table_name} needs a stream with view type NEW_AND_OLD_IMAGES. Enable it with: aws dynamodb update-table --table-name ${local.table_name} --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES (or adopt the table with create_table = true and an import block, see the README)."
    }
  }
}

################################################################################
# Tombstone table: remembers deletes for tombstone_ttl_seconds
################################################################################

resource "aws_dynamodb_table" "tombstones" {
  name         = local.tombstone_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "k"

  attribute {
    name = "k"
    type = "S"
  }

  ttl {
    enabled        = true
    attribute_name = "expires_at"
  }

  point_in_time_recovery {
    enabled = var.table_point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  tags = local.tags
}
