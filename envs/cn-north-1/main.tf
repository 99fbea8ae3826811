module "replication" {
  source = "../../modules/replication_endpoint"

  name = var.name

  tables                 = var.tables
  max_clock_skew_seconds = var.max_clock_skew_seconds

  peer_region            = var.peer_region
  peer_inbox_stream_name = var.peer_inbox_stream_name
  peer_endpoint_url      = var.peer_endpoint_url
  peer_https_proxy       = var.peer_https_proxy
  peer_credentials       = var.peer_credentials

  secret_recovery_window_in_days = var.secret_recovery_window_in_days
  secret_max_age_seconds         = var.secret_max_age_seconds

  # The peer's forwarder (its NAT gateways) and the operator's probe; nothing else.
  peer_writer_allowed_source_ips = distinct(concat([for ip in var.peer_nat_public_ips : "${ip}/32"], var.operator_source_cidrs))

  # How the peer's forwarder writes into this side's inbox: the peer-writer user's key (access_key) or
  # a certificate of the pair's CA exchanged through IAM Roles Anywhere (roles_anywhere).
  peer_writer_authentication                = var.peer_writer_authentication
  roles_anywhere_ca_certificate             = var.roles_anywhere_ca_certificate
  roles_anywhere_session_duration_seconds   = var.roles_anywhere_session_duration_seconds
  roles_anywhere_certificate_expiry_days    = var.roles_anywhere_certificate_expiry_days
  roles_anywhere_ca_certificate_expiry_days = var.roles_anywhere_ca_certificate_expiry_days
  peer_name                                 = var.peer_name
  peer_rolesanywhere_endpoint               = var.peer_rolesanywhere_endpoint

  forwarder_zip_path  = var.forwarder_zip_path
  replicator_zip_path = var.replicator_zip_path

  inbox_stream_mode = var.inbox_stream_mode
  inbox_shard_count = var.inbox_shard_count

  # low_latency: no batching window on the forwarder, an enhanced fan-out consumer for the replicator.
  latency_profile = var.latency_profile

  forwarder_maximum_retry_attempts      = var.forwarder_maximum_retry_attempts
  forwarder_maximum_record_age_seconds  = var.forwarder_maximum_record_age_seconds
  replicator_maximum_retry_attempts     = var.replicator_maximum_retry_attempts
  replicator_maximum_record_age_seconds = var.replicator_maximum_record_age_seconds

  create_vpc         = var.create_vpc
  vpc_cidr           = var.vpc_cidr
  single_nat_gateway = var.single_nat_gateway
  subnet_ids         = var.subnet_ids
  security_group_ids = var.security_group_ids

  log_retention_days = var.log_retention_days
  conflict_log_keys  = var.conflict_log_keys
  create_sns_topic   = var.create_sns_topic
  alarm_actions      = var.alarm_actions
}
