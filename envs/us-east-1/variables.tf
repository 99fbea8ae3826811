# This side: us-east-1 (partition aws). Its peer: cn-north-1 (partition aws-cn), see envs/cn-north-1.

variable "region" {
  description = "Region of this side."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix of this side's resource names (inbox \"<name>-inbox\", functions, queue, secret, ...)."
  type        = string
  default     = "ddbrep-us"
}

variable "tags" {
  description = "Tags on every resource (provider default_tags)."
  type        = map(string)
  default = {
    Project   = "ddb-cross-partition-replication"
    Side      = "us-east-1"
    ManagedBy = "terraform"
  }
}

################################################################################
# Table
################################################################################

variable "tables" {
  description = "The replicated tables by logical name (the same names on both sides): the module's tables input, see modules/replication_endpoint/README.md. A table's residency rules (export_filter, excluded_attributes; docs/residency.md) say what of it may leave this side. Default: one table, \"table\", created as \"<name>-table\", whose peer table is the peer root's default."
  type = map(object({
    create     = optional(bool, true)
    table_name = optional(string)
    key_schema = optional(object({
      hash_key       = string
      hash_key_type  = optional(string, "S")
      range_key      = optional(string)
      range_key_type = optional(string, "S")
    }), { hash_key = "pk" })
    billing_mode           = optional(string, "PAY_PER_REQUEST")
    read_capacity          = optional(number, 5)
    write_capacity         = optional(number, 5)
    ttl_attribute          = optional(string)
    point_in_time_recovery = optional(bool, true)
    deletion_protection    = optional(bool, true)
    peer_table_name        = optional(string)
    replicate_ttl_deletes  = optional(bool, false)
    residency = optional(object({
      export_filter       = optional(string)
      excluded_attributes = optional(list(string), [])
    }))
  }))
  default = {
    table = {
      peer_table_name = "ddbrep-cn-table"
    }
  }

  validation {
    condition     = length(var.tables) >= 1
    error_message = "tables needs at least one table."
  }
}

variable "conflict_log_keys" {
  description = "Log the item's key itself in each conflict line (docs/conflict-rules.md, \"Conflicts on record\"), not only its digest. Keys may be personal data: false by default."
  type        = bool
  default     = false

  validation {
    condition     = var.conflict_log_keys != null
    error_message = "conflict_log_keys must be true or false."
  }
}

variable "max_clock_skew_seconds" {
  description = "How far ahead of the functions' clock a version may be; further ahead is treated as no version (stamped) or refused. The same on both sides."
  type        = number
  default     = 300
}

################################################################################
# Peer: cn-north-1
################################################################################

variable "peer_region" {
  description = "Region of the peer side."
  type        = string
  default     = "cn-north-1"
}

variable "peer_inbox_stream_name" {
  description = "The peer's inbox stream (output inbox_stream_name of envs/cn-north-1)."
  type        = string
  default     = "ddbrep-cn-inbox"
}

variable "peer_endpoint_url" {
  description = "Override of the peer Kinesis endpoint given to the forwarder as PEER_ENDPOINT_URL (null: the public endpoint)."
  type        = string
  default     = null
}

variable "peer_https_proxy" {
  description = "HTTPS proxy for the forwarder's calls to the peer (PEER_HTTPS_PROXY; null: none)."
  type        = string
  default     = null
}

variable "peer_credentials" {
  description = "The peer's peer-writer access key, to store in this side's secret through Terraform. Null (recommended): fill the secret outside Terraform so that no key lands in the state."
  type = object({
    aws_access_key_id     = string
    aws_secret_access_key = string
  })
  default   = null
  sensitive = true
}

variable "peer_nat_public_ips" {
  description = "Output nat_public_ips of envs/cn-north-1: the addresses the peer's forwarder writes into this side's inbox from. With operator_source_cidrs, the only sources this side's peer-writer (its access key, or its role's Roles Anywhere sessions) is accepted from; both empty: any address (set them once the peer exists)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for ip in var.peer_nat_public_ips : can(cidrhost("${ip}/32", 0))])
    error_message = "peer_nat_public_ips must be IPv4 addresses, such as 203.0.113.10 (no prefix length)."
  }
}

variable "operator_source_cidrs" {
  description = "CIDRs the operator runs `ddb-replication credentials` and `rotate` from: their probe writes into this side's inbox as the peer-writer (its key, or a session of its role)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.operator_source_cidrs : can(cidrhost(cidr, 0))])
    error_message = "operator_source_cidrs must be CIDR blocks, such as 198.51.100.7/32."
  }
}

variable "peer_name" {
  description = "The peer side's name (variable name of envs/cn-north-1): its forwarder's certificate CN is \"<peer_name>.forwarder.<peer_region>\", the only one this side's peer-writer role trusts (roles_anywhere)."
  type        = string
  default     = "ddbrep-cn"
}

variable "peer_writer_authentication" {
  description = "roles_anywhere (the default; no IAM user: a trust anchor of roles_anywhere_ca_certificate, a profile and the peer-writer role, for the peer forwarder's certificate) or access_key (the peer-writer IAM user, whose key goes into the peer's secret)."
  type        = string
  default     = "roles_anywhere"
}

variable "roles_anywhere_ca_certificate" {
  description = "The pair's CA certificate in PEM, required with roles_anywhere (the default): DIR/ca.pem of `ddb-replication ca init --dir DIR`, the same on both sides, never the key. A tfvars file calls no function: export TF_VAR_roles_anywhere_ca_certificate=\"$(cat DIR/ca.pem)\", or a heredoc in terraform.tfvars."
  type        = string
  default     = null
}

variable "roles_anywhere_session_duration_seconds" {
  description = "How long the peer forwarder's Roles Anywhere credentials last, 900 to 3600 s."
  type        = number
  default     = 3600
}

variable "roles_anywhere_certificate_expiry_days" {
  description = "Days before the peer forwarder's certificate expires from which IAM Roles Anywhere notifies and the expiry alarm fires, 1 to 360 (the module's)."
  type        = number
  default     = 7
}

variable "roles_anywhere_ca_certificate_expiry_days" {
  description = "Days before the pair's CA certificate expires from which IAM Roles Anywhere notifies and the expiry alarm fires, 1 to 360 (the module's)."
  type        = number
  default     = 90
}

variable "peer_rolesanywhere_endpoint" {
  description = "host[:port] of Roles Anywhere in cn-north-1's partition for this side's forwarder (PEER_ROLESANYWHERE_ENDPOINT; null: the public endpoint)."
  type        = string
  default     = null
}

variable "secret_max_age_seconds" {
  description = "How long the forwarder caches the peer credentials, 0 to 86400 s. `ddb-replication rotate` waits this plus 15 s before it deletes the old key."
  type        = number
  default     = 300
}

variable "secret_recovery_window_in_days" {
  description = "Days a destroyed secret stays recoverable (0 or 7 to 30). 0 lets a throwaway environment be destroyed and applied again at once."
  type        = number
  default     = 7
}

################################################################################
# Code
################################################################################

variable "forwarder_zip_path" {
  description = "Forwarder zip. Null: dist/x86_64/forwarder.zip of this repository (`make package`; the functions run on x86_64)."
  type        = string
  default     = null
}

variable "replicator_zip_path" {
  description = "Replicator zip. Null: dist/x86_64/replicator.zip of this repository (`make package`; the functions run on x86_64)."
  type        = string
  default     = null
}

################################################################################
# Inbox, network, monitoring
################################################################################

variable "latency_profile" {
  description = "standard (default) or low_latency: the module's latency_profile (no batching window on the forwarder, an enhanced fan-out consumer for the replicator; more Kinesis records per change and the consumer's charges, docs/architecture.md, Latency profiles)."
  type        = string
  default     = "standard"

  validation {
    condition     = contains(["standard", "low_latency"], var.latency_profile)
    error_message = "latency_profile must be standard or low_latency."
  }
}

variable "inbox_stream_mode" {
  description = "ON_DEMAND or PROVISIONED."
  type        = string
  default     = "ON_DEMAND"
}

variable "inbox_shard_count" {
  description = "Shards of a PROVISIONED inbox."
  type        = number
  default     = 1
}

variable "create_vpc" {
  description = "Create the NAT-egress VPC for the forwarder (false: subnet_ids/security_group_ids, or none)."
  type        = bool
  default     = true
}

variable "vpc_cidr" {
  description = "CIDR of the created VPC."
  type        = string
  default     = "10.81.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones instead of one per zone."
  type        = bool
  default     = false
}

variable "subnet_ids" {
  description = "Own subnets for the forwarder when create_vpc is false."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Own security groups for the forwarder when create_vpc is false."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the log groups in days."
  type        = number
  default     = 30
}

variable "create_sns_topic" {
  description = "Create an SNS topic for the alarms."
  type        = bool
  default     = false
}

variable "alarm_actions" {
  description = "Further ARNs notified by the alarms."
  type        = list(string)
  default     = []
}

################################################################################
# Retry budgets of the event source mappings (what reaches the failure queue, and when)
################################################################################

variable "forwarder_maximum_retry_attempts" {
  description = "Retries of a failed table-stream batch before it goes to the failure queue (-1: until maximum record age)."
  type        = number
  default     = -1
}

variable "forwarder_maximum_record_age_seconds" {
  description = "Age after which a table-stream batch goes to the failure queue (-1 or 60 to 604,800)."
  type        = number
  default     = 21600
}

variable "replicator_maximum_retry_attempts" {
  description = "Retries of a failed inbox batch before it goes to the failure queue (-1: until maximum record age)."
  type        = number
  default     = -1
}

variable "replicator_maximum_record_age_seconds" {
  description = "Age after which an inbox batch goes to the failure queue (-1 or 60 to 604,800)."
  type        = number
  default     = 21600
}
