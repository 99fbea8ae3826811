################################################################################
# The peer partition's credentials, read by the forwarder
################################################################################

resource "aws_secretsmanager_secret" "peer_credentials" {
  #checkov:skip=CKV2_AWS_57:The value is a credential of the OTHER partition (an IAM user's key, or a certificate of the pair's CA whose key stays with the operator); a rotation Lambda here cannot reach either. Rotate it with `ddb-replication rotate` (docs/operations.md).
  name                    = local.secret_name
  description             = "How ${local.forwarder_name} authenticates in ${var.peer_region}: the peer-writer user's access key (JSON aws_access_key_id, aws_secret_access_key) or, when the peer uses roles_anywhere, a certificate of the pair's CA for IAM Roles Anywhere (JSON auth, certificate, private_key, trust_anchor_arn, profile_arn, role_arn). Put by ddb-replication credentials."
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_in_days

  tags = local.tags
}

# Only when the caller passes the key explicitly. By default the value is put outside Terraform,
# so that no credential is written to the state.
resource "aws_secretsmanager_secret_version" "peer_credentials" {
  count = nonsensitive(var.peer_credentials != null) ? 1 : 0

  secret_id     = aws_secretsmanager_secret.peer_credentials.id
  secret_string = jsonencode(var.peer_credentials)
}

################################################################################
# Peer-writer: the identity the PEER's forwarder uses to write into this side's inbox
################################################################################

locals {
  # The user exists only in access_key mode (roles_anywhere: the role of rolesanywhere.tf instead).
  create_peer_writer_user = var.create_peer_writer_user && var.peer_writer_authentication == "access_key"

  # Optional source-address allowlist: the PEER's NAT Elastic IPs (its nat_public_ips output).
  peer_writer_source_condition = length(var.peer_writer_allowed_source_ips) == 0 ? {} : {
    IpAddress = { "aws:SourceIp" = var.peer_writer_allowed_source_ips }
  }

  peer_writer_policy = {
    Version = "2012-10-17"
    Statement = [
      merge({
        Sid    = "WriteInbox"
        Effect = "Allow"
        # PutRecords from the peer's forwarder, PutRecord from the operator's credentials probe.
        Action   = ["kinesis:PutRecord", "kinesis:PutRecords"]
        Resource = local.inbox_stream_arn
      }, length(local.peer_writer_source_condition) == 0 ? {} : { Condition = local.peer_writer_source_condition }),
      {
        # Kinesis encrypts each record with a data key generated with the producer's permissions
        # (https://docs.aws.amazon.com/streams/latest/dev/permissions-user-key-KMS.html).
        Sid      = "EncryptInboxRecords"
        Effect   = "Allow"
        Action   = "kms:GenerateDataKey"
        Resource = local.kms_key_arn
        Condition = {
          StringEquals = { "kms:ViaService" = local.via_service["kinesis"] }
        }
      },
    ]
  }
}

# The permission is granted through a group (no policy on the user itself).
resource "aws_iam_group" "peer_writer" {
  count = local.create_peer_writer_user ? 1 : 0

  name = local.peer_writer_name
  path = "/replication/"
}

resource "aws_iam_group_policy" "peer_writer" {
  count = local.create_peer_writer_user ? 1 : 0

  name   = "write-inbox"
  group  = aws_iam_group.peer_writer[0].name
  policy = jsonencode(local.peer_writer_policy)
}

resource "aws_iam_user" "peer_writer" {
  count = local.create_peer_writer_user ? 1 : 0
  #checkov:skip=CKV_AWS_273:The peer partition's forwarder cannot use SSO or assume a role across partitions; a key-only user with one write permission is the only identity it can hold.

  name = local.peer_writer_name
  path = "/replication/"

  tags = local.tags
}

resource "aws_iam_user_group_membership" "peer_writer" {
  count = local.create_peer_writer_user ? 1 : 0

  user   = aws_iam_user.peer_writer[0].name
  groups = [aws_iam_group.peer_writer[0].name]
}

