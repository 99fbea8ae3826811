# Plan-only tests of the table map in Parameter Store (parameters.tf): one Standard String parameter
# per table, which both functions find by TABLES_PARAMETER_PATH and check against TABLES_SHA256.
# Computed values the assertions need are mocked with `override_during = plan` (Terraform >= 1.11).

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks/us-east-1"
}

variables {
  forwarder_zip_path  = "tests/fixtures/forwarder.zip"
  replicator_zip_path = "tests/fixtures/replicator.zip"
  tables              = { table = {} }
  # the default peer_writer_authentication, roles_anywhere, needs the pair's CA certificate
  roles_anywhere_ca_certificate = file("tests/fixtures/pair-ca.pem")
}

run "serves_forty_tables_with_rules" {
  command = plan

  # In the functions' environment (Lambda's 4 KB for all variables) the map held about eight tables.
  variables {
    tables = { for i in range(40) : "table${i}" => {
      table_name = "table-number-${i}"
      residency  = { export_filter = "residency == 'GLOBAL'", excluded_attributes = ["national_id"] }
    } }
  }

  assert {
    condition = length(aws_ssm_parameter.table) == 40 && alltrue([
      for name, p in aws_ssm_parameter.table : p.name == "/ddb-replication/ddbrep/tables/${name}" && p.type == "String" && p.tier == "Standard"
    ])
    error_message = "Each of the forty tables has its own Standard String parameter under the endpoint's path."
  }
}

run "the_functions_environment_holds_no_table_map" {
  command = plan

  assert {
    condition = alltrue([for f in [aws_lambda_function.forwarder, aws_lambda_function.replicator] :
      !contains(keys(f.environment[0].variables), "TABLES") &&
      f.environment[0].variables["TABLES_PARAMETER_PATH"] == "/ddb-replication/ddbrep/tables" &&
      length(f.environment[0].variables["TABLES_SHA256"]) == 64
    ])
    error_message = "Both functions find the map by TABLES_PARAMETER_PATH and check it by TABLES_SHA256; TABLES is no variable of theirs."
  }
}

run "refuses_a_table_whose_settings_exceed_a_standard_parameter" {
  command = plan

  # A Standard parameter holds 4 KB (PutParameter); 200 excluded attributes take more.
  variables {
    tables = {
      small = {}
      large = { residency = { excluded_attributes = [for i in range(200) : "excluded_attribute_${i}"] } }
    }
  }

  expect_failures = [aws_ssm_parameter.table]
}

run "both_functions_may_read_the_map_by_its_path_only" {
  command = plan

  # GetParametersByPath is authorized against the path in the request (Systems Manager user guide,
  # "How Parameter Store authorizes parameter retrieval").
  assert {
    condition = alltrue([for policy in [aws_iam_role_policy.forwarder.policy, aws_iam_role_policy.replicator.policy] :
      contains([for s in jsondecode(policy).Statement : s if s.Action == "ssm:GetParametersByPath"], {
        Sid      = "ReadTableMap"
        Effect   = "Allow"
        Action   = "ssm:GetParametersByPath"
        Resource = "arn:aws:ssm:us-east-1:111122223333:parameter/ddb-replication/ddbrep/tables"
      }) && length(regexall("\"ssm:", policy)) == 1
    ])
    error_message = "Both functions may call ssm:GetParametersByPath on the map's path, built from the partition, and nothing else of Systems Manager."
  }
}

run "the_digest_is_the_one_the_functions_compute" {
  command = plan

  # The digest is over the values as stored, which jsonencode writes with <, > and & escaped
  # (\\u003c ...). tests/engine/test_table_parameters.py computes the same digest from the same value
  # with the engine's tables_digest; a re-encoded JSON (Python's json.dumps keeps <, > and &) would
  # give another.
  variables {
    tables = { table = { residency = { export_filter = "tier < `3` && region != '<CN>'", excluded_attributes = ["national_id"] } } }
  }

  assert {
    condition     = aws_ssm_parameter.table["table"].value == "{\"key_schema\":[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\",\"KeyType\":\"HASH\"}],\"peer_table_name\":\"ddbrep-table\",\"replicate_ttl_deletes\":false,\"residency\":{\"excluded_attributes\":[\"national_id\"],\"export_filter\":\"tier \\u003c `3` \\u0026\\u0026 region != '\\u003cCN\\u003e'\"},\"table_arn\":\"arn:aws:dynamodb:us-east-1:111122223333:table/ddbrep-table\",\"table_name\":\"ddbrep-table\"}"
    error_message = "The table's parameter holds its entry as jsonencode writes it."
  }
  assert {
    condition     = aws_lambda_function.forwarder.environment[0].variables["TABLES_SHA256"] == "a481c8e6d8fab7c212f8a3b3f961c731b0956ffc9b12fe6f24b4e120d599fa20"
    error_message = "TABLES_SHA256 is sha256 of the NAME=VALUE lines of the stored values, sorted by name, as replication/table_parameters.py computes it."
  }
}
