################################################################################
# The replicated tables: each created here, or an existing one
################################################################################

locals {
  # One entry per logical table, names resolved. A single table is the map with one entry.
  tables = {
    for name, t in var.tables : name => merge(t, {
      table_name      = coalesce(t.table_name, "${var.name}-${name}")
      peer_table_name = coalesce(t.peer_table_name, t.table_name, "${var.name}-${name}")
    })
  }
  created_tables  = { for name, t in local.tables : name => t if t.create }
  existing_tables = { for name, t in local.tables : name => t if !t.create }

  table_names = { for name, t in local.tables : name => t.table_name }
  # Built from names, so policies are known at plan time (and readable in it).
  table_arns        = { for name, t in local.tables : name => "${local.arn_prefix}:dynamodb:${local.region}:${local.account_id}:table/${t.table_name}" }
  table_streams_arn = [for arn in values(local.table_arns) : "${arn}/stream/*"]

  table_stream_arns = {
    for name, t in local.tables : name => t.create ? aws_dynamodb_table.this[name].stream_arn : data.aws_dynamodb_table.existing[name].stream_arn
  }

  table_key_attributes = {
    for name, t in local.tables : name => merge(
      { (t.key_schema.hash_key) = t.key_schema.hash_key_type },
      t.key_schema.range_key == null ? {} : { (t.key_schema.range_key) = t.key_schema.range_key_type },
    )
  }

  # Each table's key schema in DynamoDB's terms, for the replicator (the table map, key_schema): it checks
  # every change's key against it before writing. From the variable for a created table, from the
  # table itself for an existing one (no DescribeTable grant or cold-start call in the function).
  table_keys = {
    for name, t in local.tables : name => t.create ? {
      hash_key  = t.key_schema.hash_key
      range_key = t.key_schema.range_key
      types     = local.table_key_attributes[name]
      } : {
      hash_key  = data.aws_dynamodb_table.existing[name].hash_key
      range_key = data.aws_dynamodb_table.existing[name].range_key
      types     = { for a in data.aws_dynamodb_table.existing[name].attribute : a.name => a.type }
    }
  }
  table_key_schema_elements = {
    for name, keys in local.table_keys : name => [
      for k in [["HASH", keys.hash_key], ["RANGE", keys.range_key]] :
      { AttributeName = k[1], KeyType = k[0], AttributeType = keys.types[k[1]] } if k[1] != null && k[1] != ""
    ]
  }

  # Each table's residency rules as the functions read them (replication/residency.py), null: none.
  table_residency = {
    for name, t in local.tables : name => t.residency == null ? null : {
      export_filter       = t.residency.export_filter
      excluded_attributes = coalesce(t.residency.excluded_attributes, [])
    }
  }
  # Excluded attributes the peer could not do without: a key attribute of the table (it could not
  # address the item) or a version attribute (it could not order the change). Checked by the
  # forwarder's precondition, against an existing table's own key too.
  table_protected_exclusions = {
    for name, keys in local.table_keys : name => [
      for a in try(local.table_residency[name].excluded_attributes, []) : a
      if contains([keys.hash_key, coalesce(keys.range_key, "-"), var.timestamp_attribute, var.origin_attribute], a)
    ]
  }
}

resource "aws_dynamodb_table" "this" {
  #checkov:skip=CKV_AWS_28:Point-in-time recovery is each table's point_in_time_recovery, on by default (checkov cannot resolve a for_each value; tests/defaults.tftest.hcl asserts the default).
  #checkov:skip=CKV2_AWS_16:Billing is each table's billing_mode, PAY_PER_REQUEST by default, which needs no auto scaling; PROVISIONED takes the operator's read_capacity and write_capacity.
  for_each = local.created_tables

  name         = each.value.table_name
  billing_mode = each.value.billing_mode
  hash_key     = each.value.key_schema.hash_key
  range_key    = each.value.key_schema.range_key

  read_capacity  = each.value.billing_mode == "PROVISIONED" ? each.value.read_capacity : null
  write_capacity = each.value.billing_mode == "PROVISIONED" ? each.value.write_capacity : null

  # The forwarder needs both images: the new one to forward, the old one to tell its own echoes apart.
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  deletion_protection_enabled = each.value.deletion_protection

  dynamic "attribute" {
    for_each = local.table_key_attributes[each.key]
    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [true]
    content {
      enabled        = true
      attribute_name = each.value.ttl_attribute
    }
  }

  point_in_time_recovery {
    enabled = each.value.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  tags = merge(local.tags, { "replication:table" = each.key })

}

data "aws_dynamodb_table" "existing" {
  for_each = local.existing_tables

  name = each.value.table_name

  lifecycle {
    postcondition {
      condition     = self.stream_enabled && self.stream_view_type == "NEW_AND_OLD_IMAGES"
      error_message = "Table ${each.value.table_name} (tables[\"${each.key}\"]) needs a stream with view type NEW_AND_OLD_IMAGES. Enable it with: aws dynamodb update-table --table-name ${each.value.table_name} --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES (or adopt the table with create = true and an import block, see the README)."
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
    enabled = var.tombstone_point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  tags = local.tags
}
