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
