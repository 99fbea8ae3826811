# Plan-only tests of the record of conflicts (docs/conflict-rules.md, "Conflicts on record"): the log
# settings reach both functions (only where they differ from the functions' own defaults), are
# validated here, and the dashboard shows Conflicts per table and kind.
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

run "conflict_log_defaults_reach_both_functions" {
  command = plan

  assert {
    condition = alltrue([for f in [aws_lambda_function.forwarder, aws_lambda_function.replicator] :
      f.environment[0].variables["CONFLICT_LOG_SAMPLE_RATE"] == "1" &&
      f.environment[0].variables["CONFLICT_LOG_MAX_LINES"] == "20" &&
    f.environment[0].variables["CONFLICT_LOG_KEYS"] == "false"])
    error_message = "By default every conflict is sampled, at most 20 lines per invocation, no keys."
  }
}

run "conflict_log_settings_reach_both_functions" {
  command = plan

  variables {
    conflict_log_sample_rate = 0.25
    conflict_log_max_lines   = 5
    conflict_log_keys        = true
  }

  assert {
    condition = alltrue([for f in [aws_lambda_function.forwarder, aws_lambda_function.replicator] :
      f.environment[0].variables["CONFLICT_LOG_SAMPLE_RATE"] == "0.25" &&
      f.environment[0].variables["CONFLICT_LOG_MAX_LINES"] == "5" &&
    f.environment[0].variables["CONFLICT_LOG_KEYS"] == "true"])
    error_message = "conflict_log_sample_rate, conflict_log_max_lines and conflict_log_keys reach both functions."
  }
}

run "rejects_a_sample_rate_above_one" {
  command = plan

  variables {
    conflict_log_sample_rate = 1.5
  }

  expect_failures = [var.conflict_log_sample_rate]
}

run "rejects_a_fractional_line_bound" {
  command = plan

  variables {
    conflict_log_max_lines = 2.5
  }

  expect_failures = [var.conflict_log_max_lines]
}

run "rejects_a_line_bound_beyond_one_thousand" {
  command = plan

  variables {
    conflict_log_max_lines = 1001
  }

  expect_failures = [var.conflict_log_max_lines]
}

run "rejects_a_null_key_setting" {
  command = plan

  variables {
    conflict_log_keys = null
  }

  expect_failures = [var.conflict_log_keys]
}

run "dashboard_shows_conflicts_per_table_and_kind" {
  command = plan

  variables {
    tables = { profiles = {}, orders = {} }
  }

  assert {
    condition = alltrue([for name in ["profiles", "orders"] : [
      for w in jsondecode(aws_cloudwatch_dashboard.this[0].dashboard_body).widgets :
      toset([for m in w.properties.metrics : "${m[1]} ${m[5]} ${m[7]} ${m[3]}"])
      if w.properties.title == "${name}: conflicts: stale dropped / tie broken / delete won / stamped"
      ] == [toset([
        "Conflicts ${name} stale-dropped ddbrep-replicator",
        "Conflicts ${name} tie-broken ddbrep-replicator",
        "Conflicts ${name} delete-won ddbrep-replicator",
        "Conflicts ${name} delete-won ddbrep-forwarder",
        "Conflicts ${name} stamped ddbrep-forwarder",
    ])]])
    error_message = "Each table's row shows Conflicts by kind, from the function that resolves each kind."
  }
}
