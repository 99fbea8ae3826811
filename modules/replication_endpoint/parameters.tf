################################################################################
# The table map in Parameter Store: one Standard String parameter per table
################################################################################

# Both functions read the map at cold start (GetParametersByPath on the path) and check it against
# TABLES_SHA256 in their environment (docs/architecture.md, Lambda contract). In the environment the
# map was limited by Lambda's 4 KB for all variables (about eight tables); a Standard parameter holds
# 4 KB per table (Systems Manager API reference, PutParameter: "Standard parameters have a value limit
# of 4 KB").

locals {
  # GetParametersByPath is authorized against the path in the request, not the parameters it returns
  # (Systems Manager user guide, "How Parameter Store authorizes parameter retrieval"): the functions
  # ask for exactly this path and may read nothing else.
  tables_parameter_path = "/ddb-replication/${var.name}/tables"
  tables_parameter_arn  = "${local.arn_prefix}:ssm:${local.region}:${local.account_id}:parameter${local.tables_parameter_path}"

  # Each table's entry, exactly what replication/settings.py parses (one line of JSON).
  table_parameter_values = {
    for name, t in local.tables : name => jsonencode({
      table_name            = t.table_name
      table_arn             = local.table_arns[name]
      peer_table_name       = t.peer_table_name
      key_schema            = local.table_key_schema_elements[name]
      replicate_ttl_deletes = t.replicate_ttl_deletes
      residency             = local.table_residency[name]
    })
  }

  # The digest of the values as stored (never of a re-encoded JSON: jsonencode writes <, > and & as
  # \u003c, \u003e, \u0026, Python's json.dumps does not): replication/table_parameters.py computes
  # the same from what GetParametersByPath returns.
  tables_sha256 = sha256(join("\n", [
    for name in sort(keys(local.table_parameter_values)) : "${name}=${local.table_parameter_values[name]}"
  ]))

  # A Standard parameter's value: at most 4 KB, which AWS counts as 4,096 characters ("Standard tier
  # parameters support a maximum parameter value of 4096 characters", PutParameter's ValidationException).
  standard_parameter_value_limit = 4096
  oversized_table_parameters = {
    for name, value in local.table_parameter_values : name => length(value)
    if length(value) > local.standard_parameter_value_limit
  }

  # Both functions' permission to read the map (iam.tf).
  table_map_statement = {
    Sid      = "ReadTableMap"
    Effect   = "Allow"
    Action   = "ssm:GetParametersByPath"
    Resource = local.tables_parameter_arn
  }
}

resource "aws_ssm_parameter" "table" {
  #checkov:skip=CKV2_AWS_34:Each value is a table's replication settings (names, ARNs, key schema, residency rules), configuration and no secret; a SecureString would add kms:Decrypt on its key to both functions.
  for_each = local.table_parameter_values

  name        = "${local.tables_parameter_path}/${each.key}"
  description = "Replication settings of table ${each.key}, read by ${local.forwarder_name} and ${local.replicator_name} (docs/architecture.md, Lambda contract)"
  type        = "String"
  tier        = "Standard"
  value       = each.value

  tags = local.tags

  lifecycle {
    precondition {
      condition     = length(local.oversized_table_parameters) == 0
      error_message = "The settings of table(s) ${join(", ", [for name, size in local.oversized_table_parameters : "${name} (${size} characters)"])} exceed the 4,096 characters a Standard Parameter Store parameter holds: shorten that table's export_filter or excluded_attributes (a table's settings without rules take about 300)."
    }
  }
}
