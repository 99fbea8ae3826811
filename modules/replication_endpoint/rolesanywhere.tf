################################################################################
# Peer-writer through IAM Roles Anywhere (peer_writer_authentication = "roles_anywhere")
#
# The PEER's forwarder holds a leaf certificate of the pair's CA (its key never leaves the peer's
# secret; the CA's key never leaves the operator) and exchanges it, with CreateSession in THIS
# partition, for short-lived credentials of the peer-writer role: no long-lived key crosses the
# border. Roles Anywhere exists in cn-north-1 and cn-northwest-1 (botocore's endpoint data;
# https://docs.amazonaws.cn/rolesanywhere/latest/userguide/authentication-create-session.html), but a
# trust anchor there cannot be an ACM Private CA ("AWS_ACM_PCA is not a supported value in your
# region", https://docs.amazonaws.cn/rolesanywhere/latest/APIReference/API_Source.html): both sides
# use a CERTIFICATE_BUNDLE, the same code in both partitions.
################################################################################

locals {
  roles_anywhere = var.peer_writer_authentication == "roles_anywhere"

  # The certificate subject CN of a forwarder is "<name>.forwarder.<its region>" (the pair's contract;
  # replication_ops.certificates.forwarder_common_name issues it). The role trusts the PEER's.
  peer_forwarder_common_name = "${coalesce(var.peer_name, var.name)}.forwarder.${var.peer_region}"

  # The service principal is rolesanywhere.amazonaws.com in both partitions: AWS's China
  # documentation names the same one and shows it beside arn:aws-cn: trust anchors
  # (https://docs.amazonaws.cn/rolesanywhere/latest/userguide/trust-model.html,
  # https://docs.amazonaws.cn/rolesanywhere/latest/userguide/attribute-mapping-and-trust-policy.html).
  rolesanywhere_service_principal = "rolesanywhere.amazonaws.com"
}

resource "aws_rolesanywhere_trust_anchor" "this" {
  count = local.roles_anywhere ? 1 : 0

  name    = "${var.name}-pair-ca"
  enabled = true

  source {
    source_type = "CERTIFICATE_BUNDLE"
    source_data {
      x509_certificate_data = var.roles_anywhere_ca_certificate
    }
  }

  # When IAM Roles Anywhere notifies (EventBridge, AWS Health; the CA's also the CloudWatch metric
  # DaysToExpiry): from this many days before a certificate expires, daily. Without these AWS's
  # default is 45 days for both, longer than the CLI's 30-day leaves live: every leaf would be
  # "expiring" from the day it is issued
  # (https://docs.aws.amazon.com/rolesanywhere/latest/userguide/customize-notification-settings.html).
  notification_settings {
    event     = "END_ENTITY_CERTIFICATE_EXPIRY"
    enabled   = true
    threshold = var.roles_anywhere_certificate_expiry_days
  }
  notification_settings {
    event     = "CA_CERTIFICATE_EXPIRY"
    enabled   = true
    threshold = var.roles_anywhere_ca_certificate_expiry_days
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.roles_anywhere_ca_certificate != null
      error_message = "peer_writer_authentication = \"roles_anywhere\" needs roles_anywhere_ca_certificate: the pair's CA certificate in PEM (`ddb-replication ca init --dir DIR` writes DIR/ca.pem; from a root: export TF_VAR_roles_anywhere_ca_certificate=\"$(cat DIR/ca.pem)\", or a heredoc in terraform.tfvars; in a module block, file(\"DIR/ca.pem\")). Or peer_writer_authentication = \"access_key\" for keys."
    }
  }
}

# Trusted only by Roles Anywhere, only for a session of this trust anchor, and only for the peer
# forwarder's certificate: CreateSession needs sts:AssumeRole, sts:TagSession and
# sts:SetSourceIdentity; the certificate's subject reaches the policy as aws:PrincipalTag/x509Subject/*
# (a profile's default attribute mapping maps every subject RDN,
# https://docs.aws.amazon.com/rolesanywhere/latest/userguide/attribute-mapping.html).
resource "aws_iam_role" "peer_writer" {
  count = local.roles_anywhere ? 1 : 0

  name                 = local.peer_writer_name
  path                 = "/replication/"
  description          = "Peer-writer of ${var.name}: the ${var.peer_region} forwarder writes into ${local.inbox_stream_name} (IAM Roles Anywhere)"
  max_session_duration = 3600 # the least IAM allows; the profile asks for at most this
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "PeerForwarderThroughRolesAnywhere"
      Effect    = "Allow"
      Principal = { Service = local.rolesanywhere_service_principal }
      Action    = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
      Condition = {
        StringEquals = { "aws:PrincipalTag/x509Subject/CN" = local.peer_forwarder_common_name }
        ArnEquals    = { "aws:SourceArn" = aws_rolesanywhere_trust_anchor.this[0].arn }
      }
    }]
  })

  tags = local.tags
}

# Exactly what the peer-writer user's group may do in access_key mode (secrets.tf).
resource "aws_iam_role_policy" "peer_writer" {
  count = local.roles_anywhere ? 1 : 0

  name   = "write-inbox"
  role   = aws_iam_role.peer_writer[0].id
  policy = jsonencode(local.peer_writer_policy)
}

resource "aws_rolesanywhere_profile" "peer_writer" {
  count = local.roles_anywhere ? 1 : 0

  name             = local.peer_writer_name
  enabled          = true
  role_arns        = [aws_iam_role.peer_writer[0].arn]
  duration_seconds = var.roles_anywhere_session_duration_seconds

  tags = local.tags
}

################################################################################
# The expiry alarm: IAM Roles Anywhere's expiration events to the alarm topics
#
# IAM Roles Anywhere sends "Roles Anywhere Certificate Expiration State Change" (source
# aws.rolesanywhere) to this account's default event bus, daily, for the trust anchor's CA certificate
# and for every end-entity certificate used in CreateSession here, from the notification threshold
# above until the day it expires (best effort;
# https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-rolesanywhere.html,
# https://docs.aws.amazon.com/rolesanywhere/latest/userguide/monitoring-events.html; the same pages in
# the China regions' documentation). The end-entity certificates used here are the PEER forwarder's:
# this side's alarm warns that the peer's forwarder needs `ddb-replication rotate --ca-dir DIR`.
# The event carries no trust anchor for an end-entity certificate, so the rule matches every Roles
# Anywhere expiry event of the account and region (the detail names the serial and the issuer).
################################################################################

locals {
  # The SNS topics among the alarm actions: this module's (its policy and key allow EventBridge below)
  # and those of alarm_actions (their owners must allow events.amazonaws.com to publish, and to use
  # their key). Other kinds of alarm action are not EventBridge targets.
  # Decided from the variables alone: the topic's key policy (kms.tf) depends on it, and the topic on the key.
  certificate_expiry_sns_actions = [for arn in var.alarm_actions : arn if can(regex("^arn:[^:]+:sns:", arn))]
  certificate_expiry_alarm = local.roles_anywhere && var.create_alarms && (
    var.create_sns_topic || length(local.certificate_expiry_sns_actions) > 0
  )
  certificate_expiry_topics = concat(aws_sns_topic.alarms[*].arn, local.certificate_expiry_sns_actions)

  # The documented pattern of the service's expiry events, in a file the local emulation's tests match
  # its events against (tests/local/test_rolesanywhere.py).
  certificate_expiry_event_pattern = jsondecode(file("${path.module}/certificate_expiry_pattern.json"))
}

data "aws_service_principal" "events" {
  count = local.certificate_expiry_alarm ? 1 : 0

  service_name = "events"
}

resource "aws_cloudwatch_event_rule" "certificate_expiry" {
  count = local.certificate_expiry_alarm ? 1 : 0

  name          = "${var.name}-certificate-expiry"
  description   = "IAM Roles Anywhere: a certificate of the pair's CA (the ${var.peer_region} forwarder's, or the CA itself) expires within the trust anchor's threshold. Fix: ddb-replication rotate --ca-dir DIR (docs/operations.md)."
  event_pattern = jsonencode(local.certificate_expiry_event_pattern)

  tags = local.tags
}

resource "aws_cloudwatch_event_target" "certificate_expiry" {
  count = local.certificate_expiry_alarm ? (var.create_sns_topic ? 1 : 0) + length(local.certificate_expiry_sns_actions) : 0

  rule      = aws_cloudwatch_event_rule.certificate_expiry[0].name
  target_id = "alarm-topic-${count.index}"
  arn       = local.certificate_expiry_topics[count.index]
}

# A topic policy replaces the topic's default one: it keeps the account's own use of the topic and
# the CloudWatch alarms' publishing, and lets this rule publish (EventBridge needs the topic's
# resource policy to allow events.amazonaws.com sns:Publish,
# https://repost.aws/knowledge-center/sns-not-getting-eventbridge-notification).
resource "aws_sns_topic_policy" "alarms" {
  count = local.certificate_expiry_alarm && var.create_sns_topic ? 1 : 0

  arn = aws_sns_topic.alarms[0].arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountOwnsTheTopic"
        Effect    = "Allow"
        Principal = { AWS = "${local.arn_prefix}:iam::${local.account_id}:root" }
        Action = [
          "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:AddPermission", "sns:RemovePermission",
          "sns:DeleteTopic", "sns:Subscribe", "sns:ListSubscriptionsByTopic", "sns:Publish",
        ]
        Resource = aws_sns_topic.alarms[0].arn
      },
      {
        Sid       = "CloudWatchAlarmsPublish"
        Effect    = "Allow"
        Principal = { Service = data.aws_service_principal.cloudwatch.name }
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.alarms[0].arn
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
      {
        Sid       = "CertificateExpiryEventsPublish"
        Effect    = "Allow"
        Principal = { Service = data.aws_service_principal.events[0].name }
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.alarms[0].arn
        Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.certificate_expiry[0].arn } }
      },
    ]
  })
}
