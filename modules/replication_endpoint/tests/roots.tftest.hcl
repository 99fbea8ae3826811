# Plans both environment roots (envs/cn-north-1, envs/us-east-1) with mock providers and checks that
# they are each other's peer: each forwarder writes to the other side's inbox, in the other region.

mock_provider "aws" {
  alias           = "cn"
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
  mock_resource "aws_kinesis_stream" {
    defaults = { arn = "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/ddbrep-cn-inbox" }
  }
}

mock_provider "aws" {
  alias           = "us"
  override_during = plan

  mock_data "aws_partition" {
    defaults = { partition = "aws", dns_suffix = "amazonaws.com" }
  }
  mock_data "aws_region" {
    defaults = { name = "us-east-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "111122223333" }
  }
  mock_data "aws_availability_zones" {
    defaults = { names = ["us-east-1a", "us-east-1b", "us-east-1c"] }
  }
  mock_resource "aws_kinesis_stream" {
    defaults = { arn = "arn:aws:kinesis:us-east-1:111122223333:stream/ddbrep-us-inbox" }
  }
}

variables {
  forwarder_zip_path  = "tests/fixtures/forwarder.zip"
  replicator_zip_path = "tests/fixtures/replicator.zip"
  # the roots' default peer_writer_authentication, roles_anywhere, needs the pair's CA certificate
  roles_anywhere_ca_certificate = file("tests/fixtures/pair-ca.pem")
}

run "cn_north_1_root" {
  command   = plan
  providers = { aws = aws.cn }

  module {
    source = "../../envs/cn-north-1"
  }

  assert {
    condition     = var.region == "cn-north-1" && output.inbox_stream_name == "ddbrep-cn-inbox"
    error_message = "The cn-north-1 root deploys the cn side."
  }
  assert {
    condition = (
      output.peer_settings.region == "us-east-1" &&
      output.peer_settings.inbox_stream_name == "ddbrep-us-inbox" &&
      output.peer_settings.table_names == { table = "ddbrep-us-table" }
    )
    error_message = "The cn-north-1 root's peer is the us-east-1 side."
  }
}

run "us_east_1_root" {
  command   = plan
  providers = { aws = aws.us }

  module {
    source = "../../envs/us-east-1"
  }

  assert {
    condition     = var.region == "us-east-1" && output.inbox_stream_name == "ddbrep-us-inbox"
    error_message = "The us-east-1 root deploys the us side."
  }
  assert {
    condition = (
      output.peer_settings.region == "cn-north-1" &&
      output.peer_settings.inbox_stream_name == "ddbrep-cn-inbox" &&
      output.peer_settings.table_names == { table = "ddbrep-cn-table" }
    )
    error_message = "The us-east-1 root's peer is the cn-north-1 side."
  }
}

run "peers_swapped" {
  command   = plan
  providers = { aws = aws.us }

  module {
    source = "../../envs/us-east-1"
  }

  assert {
    condition = (
      run.cn_north_1_root.peer_settings.region == run.us_east_1_root.region &&
      run.us_east_1_root.peer_settings.region == run.cn_north_1_root.region &&
      run.cn_north_1_root.peer_settings.inbox_stream_name == run.us_east_1_root.inbox_stream_name &&
      run.us_east_1_root.peer_settings.inbox_stream_name == run.cn_north_1_root.inbox_stream_name &&
      run.cn_north_1_root.peer_settings.table_names == run.us_east_1_root.table_names &&
      run.us_east_1_root.peer_settings.table_names == run.cn_north_1_root.table_names
    )
    error_message = "Each root's peer settings are the other root's own values."
  }
}

run "peer_writer_only_from_the_peer_nat_and_the_operator" {
  command   = plan
  providers = { aws = aws.cn }

  module {
    source = "../../envs/cn-north-1"
  }

  variables {
    peer_nat_public_ips   = ["203.0.113.10", "203.0.113.11"]
    operator_source_cidrs = ["198.51.100.0/24", "203.0.113.10/32"]
  }

  assert {
    condition = module.replication.peer_writer_allowed_source_ips == tolist([
      "203.0.113.10/32", "203.0.113.11/32", "198.51.100.0/24",
    ])
    error_message = "The peer writer writes only from the peer's NAT addresses (as /32) and the operator's CIDRs."
  }
}

run "peer_nat_addresses_are_addresses" {
  command   = plan
  providers = { aws = aws.cn }

  module {
    source = "../../envs/cn-north-1"
  }

  variables {
    peer_nat_public_ips = ["203.0.113.10/32"]
  }

  expect_failures = [var.peer_nat_public_ips]
}

run "cn_north_1_root_takes_residency_rules" {
  command   = plan
  providers = { aws = aws.cn }

  module {
    source = "../../envs/cn-north-1"
  }

  # The worked example of docs/residency.md (envs/cn-north-1/terraform.tfvars.example).
  variables {
    tables = {
      table = {
        peer_table_name = "ddbrep-us-table"
        residency       = { export_filter = "residency == 'GLOBAL'", excluded_attributes = ["national_id"] }
      }
    }
  }

  assert {
    condition     = output.table_names == { table = "ddbrep-cn-table" }
    error_message = "The cn-north-1 root plans a table with residency rules (the module validates them and writes them into the table's parameter)."
  }
}

run "each_root_trusts_the_other_roots_forwarder_in_roles_anywhere_mode_by_default" {
  command   = plan
  providers = { aws = aws.cn }

  module {
    source = "../../envs/cn-north-1"
  }

  assert {
    condition     = output.peer_writer_certificate_subject == "ddbrep-us.forwarder.us-east-1"
    error_message = "The cn-north-1 root's peer-writer role trusts the us-east-1 root's forwarder (name ddbrep-us)."
  }
  assert {
    condition     = output.peer_writer_user_name == null
    error_message = "No peer-writer user in roles_anywhere mode."
  }
}
