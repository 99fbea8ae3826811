# Hand these to the peer root (see the module README's runbook).

output "region" {
  description = "Region of this side (the peer's peer_region)."
  value       = module.replication.region
}

output "inbox_stream_name" {
  description = "This side's inbox (the peer's peer_inbox_stream_name)."
  value       = module.replication.inbox_stream_name
}

output "inbox_stream_arn" {
  description = "ARN of this side's inbox."
  value       = module.replication.inbox_stream_arn
}

output "table_names" {
  description = "This side's replicated table of each logical table (the peer's tables[*].peer_table_name)."
  value       = module.replication.table_names
}

output "tombstone_table_name" {
  description = "This side's tombstone table."
  value       = module.replication.tombstone_table_name
}

output "peer_writer_user_name" {
  description = "IAM user whose access key goes into the PEER's secret."
  value       = module.replication.peer_writer_user_name
}

output "peer_writer_user_arn" {
  description = "ARN of the peer-writer user."
  value       = module.replication.peer_writer_user_arn
}

output "peer_writer_role_arn" {
  description = "Role the PEER's forwarder assumes through Roles Anywhere (roles_anywhere; null otherwise)."
  value       = module.replication.peer_writer_role_arn
}

output "roles_anywhere_trust_anchor_arn" {
  description = "Trust anchor of the pair's CA on this side (roles_anywhere; null otherwise): import CRLs into it."
  value       = module.replication.roles_anywhere_trust_anchor_arn
}

output "roles_anywhere_profile_arn" {
  description = "Roles Anywhere profile of the peer-writer role (roles_anywhere; null otherwise)."
  value       = module.replication.roles_anywhere_profile_arn
}

output "peer_writer_certificate_subject" {
  description = "Certificate CN the peer-writer role trusts: the PEER forwarder's (roles_anywhere; null otherwise)."
  value       = module.replication.peer_writer_certificate_subject
}

output "peer_credentials_secret_name" {
  description = "Secret to fill with the PEER's peer-writer access key."
  value       = module.replication.peer_credentials_secret_name
}

output "peer_credentials_secret_arn" {
  description = "ARN of that secret."
  value       = module.replication.peer_credentials_secret_arn
}

output "nat_public_ips" {
  description = "Source addresses of the forwarder's calls to the peer."
  value       = module.replication.nat_public_ips
}

output "forwarder_function_name" {
  description = "Forwarder Lambda function."
  value       = module.replication.forwarder_function_name
}

output "replicator_function_name" {
  description = "Replicator Lambda function."
  value       = module.replication.replicator_function_name
}

output "failure_queue_url" {
  description = "Failure queue (failed batches, poison messages)."
  value       = module.replication.failure_queue_url
}

output "failure_queue_arn" {
  description = "ARN of the failure queue."
  value       = module.replication.failure_queue_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = module.replication.dashboard_name
}

output "peer_settings" {
  description = "What this side expects of its peer."
  value       = module.replication.peer_settings
}
