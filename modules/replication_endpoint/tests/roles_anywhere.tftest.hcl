# Plan-only tests of peer_writer_authentication: in roles_anywhere mode a trust anchor of the pair's CA,
# a profile and the peer-writer role trusted only by Roles Anywhere for the peer forwarder's
# certificate, and no IAM user; in access_key mode none of these. Both partitions.

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
  mock_data "aws_service_principal" {
    defaults = { name = "lambda.amazonaws.com" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555" }
  }
  mock_resource "aws_kinesis_stream" {
    defaults = { arn = "arn:aws:kinesis:us-east-1:111122223333:stream/ddbrep-us-inbox" }
  }
  mock_resource "aws_rolesanywhere_trust_anchor" {
    defaults = { arn = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/0d0a4f2e-1111-2222-3333-444455556666" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::111122223333:role/replication/ddbrep-us-peer-writer" }
  }
  mock_resource "aws_rolesanywhere_profile" {
    defaults = { arn = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/7e1b2c3d-1111-2222-3333-444455556666" }
  }
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:us-east-1:111122223333:ddbrep-us-replication-alarms" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:us-east-1:111122223333:rule/ddbrep-us-certificate-expiry" }
  }
}

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
  mock_data "aws_service_principal" {
    defaults = { name = "lambda.amazonaws.com" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws-cn:kms:cn-north-1:123456789012:key/11111111-2222-3333-4444-555555555555" }
  }
  mock_resource "aws_kinesis_stream" {
    defaults = { arn = "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/ddbrep-cn-inbox" }
  }
  mock_resource "aws_rolesanywhere_trust_anchor" {
    defaults = { arn = "arn:aws-cn:rolesanywhere:cn-north-1:123456789012:trust-anchor/0d0a4f2e-1111-2222-3333-444455556666" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws-cn:iam::123456789012:role/replication/ddbrep-cn-peer-writer" }
  }
}

variables {
  forwarder_zip_path  = "tests/fixtures/forwarder.zip"
  replicator_zip_path = "tests/fixtures/replicator.zip"
  tables              = { table = {} }
  name                = "ddbrep-us"
  peer_name           = "ddbrep-cn"
  peer_region         = "cn-north-1"
  # the default peer_writer_authentication, roles_anywhere, needs the pair's CA certificate
  roles_anywhere_ca_certificate = file("tests/fixtures/pair-ca.pem")
}

run "roles_anywhere_is_the_default_for_new_deployments" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    roles_anywhere_ca_certificate = file("tests/fixtures/pair-ca.pem")
  }

  assert {
    condition     = var.peer_writer_authentication == "roles_anywhere"
    error_message = "roles_anywhere is the default for new deployments (issue 12); access_key is chosen explicitly."
  }
  assert {
    condition     = length(aws_rolesanywhere_trust_anchor.this) == 1 && length(aws_iam_user.peer_writer) == 0
    error_message = "The default creates the trust anchor and no peer-writer user."
  }
}

run "access_key_mode_creates_no_roles_anywhere_resource" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication = "access_key"
  }
  assert {
    condition = (
      length(aws_rolesanywhere_trust_anchor.this) == 0 && length(aws_rolesanywhere_profile.peer_writer) == 0 &&
      length(aws_iam_role.peer_writer) == 0 && length(aws_iam_role_policy.peer_writer) == 0
    )
    error_message = "access_key mode creates no trust anchor, profile or peer-writer role."
  }
  assert {
    condition     = length(aws_iam_user.peer_writer) == 1 && length(aws_iam_group_policy.peer_writer) == 1
    error_message = "access_key mode keeps the peer-writer user and its group's policy."
  }
  assert {
    condition = (
      output.peer_writer_role_arn == null && output.roles_anywhere_trust_anchor_arn == null &&
      output.roles_anywhere_profile_arn == null && output.peer_writer_certificate_subject == null
    )
    error_message = "The Roles Anywhere outputs are null in access_key mode."
  }
  assert {
    condition     = !contains(keys(aws_lambda_function.forwarder.environment[0].variables), "PEER_ROLESANYWHERE_ENDPOINT")
    error_message = "Without peer_rolesanywhere_endpoint the forwarder resolves the peer's public endpoint itself."
  }
}

run "roles_anywhere_mode_trusts_the_pair_ca_through_a_certificate_bundle" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication    = "roles_anywhere"
    roles_anywhere_ca_certificate = file("tests/fixtures/pair-ca.pem")
  }

  assert {
    condition = (
      aws_rolesanywhere_trust_anchor.this[0].source[0].source_type == "CERTIFICATE_BUNDLE" &&
      aws_rolesanywhere_trust_anchor.this[0].source[0].source_data[0].x509_certificate_data == file("tests/fixtures/pair-ca.pem") &&
      aws_rolesanywhere_trust_anchor.this[0].source[0].source_data[0].acm_pca_arn == null &&
      aws_rolesanywhere_trust_anchor.this[0].enabled
    )
    error_message = "The trust anchor is an enabled CERTIFICATE_BUNDLE of the given CA certificate (no ACM Private CA: not in the China regions)."
  }
  assert {
    condition = (
      aws_rolesanywhere_profile.peer_writer[0].role_arns == toset([aws_iam_role.peer_writer[0].arn]) &&
      aws_rolesanywhere_profile.peer_writer[0].duration_seconds == 3600 &&
      aws_rolesanywhere_profile.peer_writer[0].enabled
    )
    error_message = "The enabled profile vends one-hour sessions of the peer-writer role only."
  }
  assert {
    condition     = aws_iam_role.peer_writer[0].max_session_duration == 3600 && aws_iam_role.peer_writer[0].name == "ddbrep-us-peer-writer"
    error_message = "The peer-writer role allows the profile's session duration."
  }
}

run "roles_anywhere_mode_creates_no_iam_user_or_key" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication    = "roles_anywhere"
    roles_anywhere_ca_certificate = file("tests/fixtures/pair-ca.pem")
  }

  assert {
    condition = (
      length(aws_iam_user.peer_writer) == 0 && length(aws_iam_group.peer_writer) == 0 &&
      length(aws_iam_group_policy.peer_writer) == 0 && length(aws_iam_user_group_membership.peer_writer) == 0
    )
    error_message = "roles_anywhere mode creates no IAM user, group or group policy (even with create_peer_writer_user's default true)."
  }
  assert {
    condition     = output.peer_writer_user_name == null && output.peer_writer_user_arn == null
    error_message = "No peer-writer user is reported in roles_anywhere mode."
  }
}

run "the_role_trusts_only_roles_anywhere_for_this_anchor_and_the_peer_forwarder" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication    = "roles_anywhere"
    roles_anywhere_ca_certificate = file("tests/fixtures/pair-ca.pem")
  }

  assert {
    condition = jsondecode(aws_iam_role.peer_writer[0].assume_role_policy).Statement == [{
      Sid       = "PeerForwarderThroughRolesAnywhere"
      Effect    = "Allow"
      Principal = { Service = "rolesanywhere.amazonaws.com" }
      Action    = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
      Condition = {
        StringEquals = { "aws:PrincipalTag/x509Subject/CN" = "ddbrep-cn.forwarder.cn-north-1" }
        ArnEquals    = { "aws:SourceArn" = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/0d0a4f2e-1111-2222-3333-444455556666" }
      }
    }]
    error_message = "One statement: the Roles Anywhere principal, the three documented actions, the peer forwarder's CN and this trust anchor."
  }
  assert {
    condition = (
      output.peer_writer_certificate_subject == "ddbrep-cn.forwarder.cn-north-1" &&
      output.roles_anywhere_trust_anchor_arn == aws_rolesanywhere_trust_anchor.this[0].arn &&
      output.roles_anywhere_profile_arn == aws_rolesanywhere_profile.peer_writer[0].arn &&
      output.peer_writer_role_arn == aws_iam_role.peer_writer[0].arn
    )
    error_message = "The outputs name the trusted CN, the trust anchor, the profile and the role (what the peer's secret needs)."
  }
}

run "the_role_may_do_exactly_what_the_user_may" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication     = "roles_anywhere"
    roles_anywhere_ca_certificate  = file("tests/fixtures/pair-ca.pem")
    peer_writer_allowed_source_ips = ["203.0.113.10/32"]
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.peer_writer[0].policy).Statement == [
      {
        Sid       = "WriteInbox"
        Effect    = "Allow"
        Action    = ["kinesis:PutRecord", "kinesis:PutRecords"]
        Resource  = "arn:aws:kinesis:us-east-1:111122223333:stream/ddbrep-us-inbox"
        Condition = { IpAddress = { "aws:SourceIp" = ["203.0.113.10/32"] } }
      },
      {
        Sid       = "EncryptInboxRecords"
        Effect    = "Allow"
        Action    = "kms:GenerateDataKey"
        Resource  = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555"
        Condition = { StringEquals = { "kms:ViaService" = "kinesis.us-east-1.amazonaws.com" } }
      },
    ]
    error_message = "The role puts records into this side's inbox (from the allowlisted addresses) and encrypts them with its key through Kinesis; nothing else."
  }
}

run "the_same_in_the_china_partition" {
  command   = plan
  providers = { aws = aws.cn }

  variables {
    name                          = "ddbrep-cn"
    peer_name                     = "ddbrep-us"
    peer_region                   = "us-east-1"
    peer_writer_authentication    = "roles_anywhere"
    roles_anywhere_ca_certificate = file("tests/fixtures/pair-ca.pem")
  }

  assert {
    condition     = jsondecode(aws_iam_role.peer_writer[0].assume_role_policy).Statement[0].Principal == { Service = "rolesanywhere.amazonaws.com" }
    error_message = "AWS's China documentation names the same service principal, rolesanywhere.amazonaws.com."
  }
  assert {
    condition = jsondecode(aws_iam_role.peer_writer[0].assume_role_policy).Statement[0].Condition == {
      StringEquals = { "aws:PrincipalTag/x509Subject/CN" = "ddbrep-us.forwarder.us-east-1" }
      ArnEquals    = { "aws:SourceArn" = "arn:aws-cn:rolesanywhere:cn-north-1:123456789012:trust-anchor/0d0a4f2e-1111-2222-3333-444455556666" }
    }
    error_message = "The China side trusts the us-east-1 forwarder's certificate through its own (aws-cn) trust anchor."
  }
  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.peer_writer[0].policy).Statement : s.Resource] == [
      "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/ddbrep-cn-inbox",
      "arn:aws-cn:kms:cn-north-1:123456789012:key/11111111-2222-3333-4444-555555555555",
    ]
    error_message = "The role's policy names aws-cn ARNs of the China inbox and key."
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.peer_writer[0].policy).Statement[1].Condition.StringEquals["kms:ViaService"] == "kinesis.cn-north-1.amazonaws.com.cn"
    error_message = "The key is used only through the China Kinesis endpoint."
  }
  assert {
    condition     = length(aws_iam_user.peer_writer) == 0 && aws_rolesanywhere_trust_anchor.this[0].source[0].source_type == "CERTIFICATE_BUNDLE"
    error_message = "No IAM user in China either; the trust anchor is a certificate bundle."
  }
}

run "peer_name_defaults_to_this_sides_name" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_name                     = null
    peer_writer_authentication    = "roles_anywhere"
    roles_anywhere_ca_certificate = file("tests/fixtures/pair-ca.pem")
  }

  assert {
    condition     = output.peer_writer_certificate_subject == "ddbrep-us.forwarder.cn-north-1"
    error_message = "Both sides of one name: the trusted CN is <name>.forwarder.<peer_region>."
  }
}

run "a_session_duration_is_set_on_the_profile" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication              = "roles_anywhere"
    roles_anywhere_ca_certificate           = file("tests/fixtures/pair-ca.pem")
    roles_anywhere_session_duration_seconds = 900
  }

  assert {
    condition     = aws_rolesanywhere_profile.peer_writer[0].duration_seconds == 900
    error_message = "The profile vends sessions of the given duration."
  }
}

run "the_ca_certificate_is_required_in_roles_anywhere_mode" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication    = "roles_anywhere"
    roles_anywhere_ca_certificate = null
  }

  expect_failures = [aws_rolesanywhere_trust_anchor.this]
}

run "a_private_key_is_not_a_ca_certificate" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication    = "roles_anywhere"
    roles_anywhere_ca_certificate = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
  }

  expect_failures = [var.roles_anywhere_ca_certificate]
}

run "a_certificate_with_a_key_pasted_after_it_is_refused" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication    = "roles_anywhere"
    roles_anywhere_ca_certificate = "${file("tests/fixtures/pair-ca.pem")}-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
  }

  expect_failures = [var.roles_anywhere_ca_certificate]
}

run "text_that_is_not_pem_is_refused" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    roles_anywhere_ca_certificate = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
  }

  expect_failures = [var.roles_anywhere_ca_certificate]
}

run "a_bundle_longer_than_a_trust_anchor_holds_is_refused" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    roles_anywhere_ca_certificate = join("", [for i in range(13) : file("tests/fixtures/pair-ca.pem")])
  }

  expect_failures = [var.roles_anywhere_ca_certificate]
}

run "a_bundle_of_two_certificates_is_accepted" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication    = "roles_anywhere"
    roles_anywhere_ca_certificate = join("", [file("tests/fixtures/pair-ca.pem"), file("tests/fixtures/pair-ca.pem")])
  }

  assert {
    condition     = length(aws_rolesanywhere_trust_anchor.this) == 1
    error_message = "A CERTIFICATE_BUNDLE may hold several certificates (a CA being replaced and its successor)."
  }
}

run "session_duration_below_createsessions_shortest_is_refused" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    roles_anywhere_session_duration_seconds = 899
  }

  expect_failures = [var.roles_anywhere_session_duration_seconds]
}

run "session_duration_above_the_roles_maximum_is_refused" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    roles_anywhere_session_duration_seconds = 3601
  }

  expect_failures = [var.roles_anywhere_session_duration_seconds]
}

run "an_unknown_authentication_is_refused" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication = "certificate"
  }

  expect_failures = [var.peer_writer_authentication]
}

run "the_peer_rolesanywhere_endpoint_reaches_the_forwarder" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    roles_anywhere_ca_certificate = file("tests/fixtures/pair-ca.pem")
    peer_rolesanywhere_endpoint   = "127.0.0.1:19443"
  }

  assert {
    condition     = aws_lambda_function.forwarder.environment[0].variables["PEER_ROLESANYWHERE_ENDPOINT"] == "127.0.0.1:19443"
    error_message = "The forwarder calls CreateSession at the given host:port."
  }
}

run "a_peer_rolesanywhere_endpoint_with_a_scheme_is_refused" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_rolesanywhere_endpoint = "https://rolesanywhere.cn-north-1.amazonaws.com.cn"
  }

  expect_failures = [var.peer_rolesanywhere_endpoint]
}

# -- The certificate expiry alarm -------------------------------------------------------------------

run "the_trust_anchor_notifies_before_its_certificates_expire" {
  command   = plan
  providers = { aws = aws.us }

  assert {
    condition = {
      for s in aws_rolesanywhere_trust_anchor.this[0].notification_settings : s.event => [s.enabled, s.threshold]
      } == {
      END_ENTITY_CERTIFICATE_EXPIRY = [true, 7]
      CA_CERTIFICATE_EXPIRY         = [true, 90]
    }
    error_message = "Both expiry events are enabled with the module's thresholds (AWS's default, 45 days, is longer than a 30-day leaf lives)."
  }
}

run "the_thresholds_are_the_variables" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    roles_anywhere_certificate_expiry_days    = 12
    roles_anywhere_ca_certificate_expiry_days = 200
  }

  assert {
    condition = {
      for s in aws_rolesanywhere_trust_anchor.this[0].notification_settings : s.event => s.threshold
    } == { END_ENTITY_CERTIFICATE_EXPIRY = 12, CA_CERTIFICATE_EXPIRY = 200 }
    error_message = "Each threshold is its variable's."
  }
}

run "without_an_sns_topic_among_the_alarm_actions_there_is_no_rule" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    alarm_actions = ["arn:aws:ssm:us-east-1:111122223333:opsitem:2#CATEGORY=Security"]
  }

  assert {
    condition     = length(aws_cloudwatch_event_rule.certificate_expiry) == 0 && length(aws_sns_topic_policy.alarms) == 0
    error_message = "No SNS topic to send to (create_sns_topic false, no SNS alarm action): no rule, the topic policy untouched."
  }
}

run "the_expiry_events_go_to_the_modules_topic" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    create_sns_topic = true
  }

  override_data {
    target = data.aws_service_principal.events
    values = { name = "events.amazonaws.com" }
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.certificate_expiry[0].event_pattern) == {
      source        = ["aws.rolesanywhere"]
      "detail-type" = ["Roles Anywhere Certificate Expiration State Change"]
    }
    error_message = "The rule matches the service's expiry events as the EventBridge events reference documents them."
  }
  assert {
    condition     = [for t in aws_cloudwatch_event_target.certificate_expiry : t.arn] == [aws_sns_topic.alarms[0].arn]
    error_message = "The rule's one target is the module's alarm topic."
  }
  assert {
    condition = [for s in jsondecode(aws_sns_topic_policy.alarms[0].policy).Statement : s if s.Sid == "CertificateExpiryEventsPublish"] == [{
      Sid       = "CertificateExpiryEventsPublish"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.alarms[0].arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.certificate_expiry[0].arn } }
    }]
    error_message = "The topic's policy lets EventBridge publish for this rule only."
  }
  assert {
    condition     = toset([for s in jsondecode(aws_sns_topic_policy.alarms[0].policy).Statement : s.Sid]) == toset(["AccountOwnsTheTopic", "CloudWatchAlarmsPublish", "CertificateExpiryEventsPublish"])
    error_message = "Replacing the default topic policy keeps the account's use and the CloudWatch alarms' publishing."
  }
  assert {
    condition = [for s in jsondecode(aws_kms_key.this[0].policy).Statement : [s.Principal, s.Action] if s.Sid == "AllowEventBridgeCertificateExpiry"] == [
      [{ Service = "events.amazonaws.com" }, ["kms:Decrypt", "kms:GenerateDataKey*"]]
    ]
    error_message = "The topic's key lets EventBridge encrypt what it publishes."
  }
}

run "sns_alarm_actions_receive_the_expiry_events_too" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    alarm_actions = ["arn:aws:sns:us-east-1:111122223333:operations", "arn:aws:ssm:us-east-1:111122223333:opsitem:2"]
  }

  assert {
    condition     = [for t in aws_cloudwatch_event_target.certificate_expiry : t.arn] == ["arn:aws:sns:us-east-1:111122223333:operations"]
    error_message = "Every SNS topic among alarm_actions is a target; other alarm actions are not EventBridge targets."
  }
  assert {
    condition     = length(aws_sns_topic_policy.alarms) == 0 && !contains([for s in jsondecode(aws_kms_key.this[0].policy).Statement : s.Sid], "AllowEventBridgeCertificateExpiry")
    error_message = "A topic the module does not own keeps its policy and key (its owner allows EventBridge)."
  }
}

run "access_key_mode_has_no_certificate_alarm" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    peer_writer_authentication = "access_key"
    create_sns_topic           = true
  }

  assert {
    condition     = length(aws_cloudwatch_event_rule.certificate_expiry) == 0 && length(aws_sns_topic_policy.alarms) == 0
    error_message = "No certificates, no expiry rule."
  }
}

run "an_expiry_threshold_above_360_days_is_refused" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    roles_anywhere_certificate_expiry_days = 361
  }

  expect_failures = [var.roles_anywhere_certificate_expiry_days]
}

run "a_ca_expiry_threshold_of_zero_is_refused" {
  command   = plan
  providers = { aws = aws.us }

  variables {
    roles_anywhere_ca_certificate_expiry_days = 0
  }

  expect_failures = [var.roles_anywhere_ca_certificate_expiry_days]
}
