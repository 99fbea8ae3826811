# Plan-only tests of a table's residency rules (docs/residency.md): typed and validated here, written
# into the table's parameter both functions read (replication/residency.py parses them again at cold start).
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

run "no_residency_rules_by_default" {
  command = plan

  assert {
    condition     = jsondecode(aws_ssm_parameter.table["table"].value).residency == null
    error_message = "A table without rules has residency null in its parameter (everything crosses, whole)."
  }
}

run "residency_rules_reach_both_functions" {
  command = plan

  variables {
    tables = {
      profiles = { residency = { export_filter = "residency == 'GLOBAL'", excluded_attributes = ["national_id", "phone"] } }
      orders   = { residency = { export_filter = "region == 'GLOBAL'" } }
      events   = { residency = { excluded_attributes = ["national_id"] } }
      accounts = {}
    }
  }

  assert {
    condition = { for name, p in aws_ssm_parameter.table : name => jsondecode(p.value).residency } == {
      profiles = { export_filter = "residency == 'GLOBAL'", excluded_attributes = ["national_id", "phone"] }
      orders   = { export_filter = "region == 'GLOBAL'", excluded_attributes = [] }
      events   = { export_filter = null, excluded_attributes = ["national_id"] }
      accounts = null
    }
    error_message = "Each table's rules are in its parameter, which both functions read, as export_filter and excluded_attributes ([] when not given; residency null without rules)."
  }
}

run "rejects_an_empty_export_filter" {
  command = plan

  variables {
    tables = { table = { residency = { export_filter = " " } } }
  }

  expect_failures = [var.tables]
}

run "rejects_an_export_filter_longer_than_1024_characters" {
  command = plan

  variables {
    tables = { table = { residency = { export_filter = "a == '${format("%1018s", "x")}'" } } }
  }

  expect_failures = [var.tables]
}

run "accepts_an_export_filter_of_1024_characters" {
  command = plan

  variables {
    tables = { table = { residency = { export_filter = "a == '${format("%1017s", "x")}'" } } }
  }

  assert {
    condition     = length(jsondecode(aws_ssm_parameter.table["table"].value).residency.export_filter) == 1024
    error_message = "A filter of exactly 1,024 characters is accepted, whole."
  }
}

run "rejects_an_empty_excluded_attribute_name" {
  command = plan

  variables {
    tables = { table = { residency = { excluded_attributes = ["national_id", ""] } } }
  }

  expect_failures = [var.tables]
}

run "rejects_an_excluded_attribute_named_twice" {
  command = plan

  variables {
    tables = { table = { residency = { excluded_attributes = ["national_id", "national_id"] } } }
  }

  expect_failures = [var.tables]
}

run "rejects_excluding_the_partition_key" {
  command = plan

  variables {
    tables = { table = { key_schema = { hash_key = "id" }, residency = { excluded_attributes = ["id"] } } }
  }

  expect_failures = [aws_lambda_function.forwarder]
}

run "rejects_excluding_the_sort_key" {
  command = plan

  variables {
    tables = { table = { key_schema = { hash_key = "pk", range_key = "sk" }, residency = { excluded_attributes = ["sk"] } } }
  }

  expect_failures = [aws_lambda_function.forwarder]
}

run "rejects_excluding_the_timestamp_attribute" {
  command = plan

  variables {
    timestamp_attribute = "updated_at"
    tables              = { table = { residency = { excluded_attributes = ["updated_at"] } } }
  }

  expect_failures = [aws_lambda_function.forwarder]
}

run "rejects_excluding_the_origin_attribute" {
  command = plan

  variables {
    tables = { table = { residency = { excluded_attributes = ["last_updater_region"] } } }
  }

  expect_failures = [aws_lambda_function.forwarder]
}

run "excludes_an_attribute_named_like_another_tables_key" {
  command = plan

  variables {
    tables = {
      a = { key_schema = { hash_key = "national_id" } }
      b = { residency = { excluded_attributes = ["national_id"] } }
    }
  }

  assert {
    condition     = jsondecode(aws_ssm_parameter.table["b"].value).residency.excluded_attributes == ["national_id"]
    error_message = "Only the table's own key attributes are protected, not another table's."
  }
}

run "rejects_excluding_an_existing_tables_own_sort_key" {
  command = plan

  # The key_schema given is ignored for an existing table: its own key (order_id, line) is protected.
  variables {
    tables = { orders = { create = false, table_name = "orders", residency = { excluded_attributes = ["line"] } } }
  }

  override_data {
    target = data.aws_dynamodb_table.existing["orders"]
    values = {
      stream_enabled   = true
      stream_view_type = "NEW_AND_OLD_IMAGES"
      stream_arn       = "arn:aws:dynamodb:us-east-1:111122223333:table/orders/stream/2026-01-01T00:00:00.000"
      hash_key         = "order_id"
      range_key        = "line"
      attribute        = [{ name = "order_id", type = "S" }, { name = "line", type = "N" }]
    }
  }

  expect_failures = [aws_lambda_function.forwarder]
}

run "grants_the_merge_read_only_on_tables_with_excluded_attributes" {
  command = plan

  # The replicator merges a peer's upsert of a table with excluded attributes: it reads this side's
  # values of them (GetItem). No other table, and no table of a module without such rules, gets it.
  variables {
    tables = {
      kept = { table_name = "kept", residency = { excluded_attributes = ["national_id"] } }
      open = { table_name = "open", residency = { export_filter = "residency == 'GLOBAL'" } }
    }
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.replicator.policy).Statement : s.Resource
      if s.Sid == "ReadKeptAttributes"
    ] == [["arn:aws:dynamodb:us-east-1:111122223333:table/kept"]]
    error_message = "GetItem is granted on the table with excluded attributes alone."
  }
}

run "grants_no_merge_read_without_excluded_attributes" {
  command = plan

  assert {
    condition     = length([for s in jsondecode(aws_iam_role_policy.replicator.policy).Statement : s if s.Sid == "ReadKeptAttributes"]) == 0
    error_message = "Without excluded attributes the replicator reads no item."
  }
}
