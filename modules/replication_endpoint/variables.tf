################################################################################
# General
################################################################################

variable "name" {
  description = "Prefix of every resource name (table names excepted). Must be unique per account and region so that two replication pairs can live side by side."
  type        = string
  default     = "ddbrep"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", var.name))
    error_message = "name must start with a letter and hold at most 32 letters, digits and hyphens (it ends up in IAM, Lambda and SQS names)."
  }
}

variable "tags" {
  description = "Tags added to every resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "ARN of an existing KMS key to encrypt the inbox stream, the secret, the failure queue, the log groups, the SNS topic, the tables and the Lambda environment. Null: the module creates one key (with rotation) and its policy. A key of your own must let the regional CloudWatch Logs service principal (and CloudWatch, for an encrypted SNS topic) use it."
  type        = string
  default     = null
}

variable "kms_key_deletion_window_in_days" {
  description = "Waiting period before the module's KMS key is deleted after a destroy. 30 (the maximum) leaves the most time to recover from a mistaken destroy."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Retention of the Lambda (and VPC flow) log groups, in days. 30 keeps a month of operational logs; the durable record of replication is the tables and the failure queue, not the logs."
  type        = number
  default     = 30
}

################################################################################
# Table
################################################################################

variable "tables" {
  description = "The replicated tables, by logical name: the same names on both sides (the wire carries them), 1 to 64 of a-z A-Z 0-9 _ - . each. One inbox, one peer credential, one forwarder and one replicator serve them all; a single table is a map with one entry. Per table: create (true: created here; false: the existing table_name, whose stream must be on with view type NEW_AND_OLD_IMAGES), table_name (null: \"<name>-<logical name>\"; the peer's peer_table_name for this table), key_schema (of a created table: hash_key, optional range_key, types S, N or B; an existing table's own is read), billing_mode (PAY_PER_REQUEST or PROVISIONED with read_capacity and write_capacity), ttl_attribute (epoch-seconds expiry of a created table; null: no TTL), point_in_time_recovery and deletion_protection (of a created table; both on by default), peer_table_name (the peer's table of this logical name, null: this table_name; the replicator refuses messages for this table from any other), replicate_ttl_deletes (true: TTL expiries are deleted on the peer too; false: each side expires items by its own TTL), residency (what of this table may leave this side, docs/residency.md; null: everything, whole): export_filter (a JMESPath expression over the item as plain JSON, at most 1,024 characters, within the 4 KB of the table's Standard parameter in Parameter Store; an item crosses only when it is exactly true; null: every item) and excluded_attributes (top-level attribute names never sent to the peer, whose changes coming back keep this side's values; never a key attribute of the table nor timestamp_attribute or origin_attribute). Two logical tables may not share a table_name or a peer_table_name."
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
  # One table, "<name>-table", key pk (S), whose peer table has the same name.
  default = { table = {} }

  validation {
    condition     = length(var.tables) >= 1
    error_message = "tables needs at least one table."
  }
  validation {
    condition     = alltrue([for name in keys(var.tables) : can(regex("^[A-Za-z0-9_.-]{1,64}$", name))])
    error_message = "Each key of tables (a logical table name) must be 1 to 64 of a-z, A-Z, 0-9, '_', '-' and '.'."
  }
  validation {
    condition     = alltrue([for t in values(var.tables) : contains(["S", "N", "B"], t.key_schema.hash_key_type) && contains(["S", "N", "B"], t.key_schema.range_key_type)])
    error_message = "Key attribute types (tables[*].key_schema) must be S, N or B."
  }
  validation {
    condition     = alltrue([for t in values(var.tables) : contains(["PAY_PER_REQUEST", "PROVISIONED"], t.billing_mode)])
    error_message = "tables[*].billing_mode must be PAY_PER_REQUEST or PROVISIONED."
  }
  validation {
    condition     = alltrue([for t in values(var.tables) : t.table_name == null || can(regex("^[a-zA-Z0-9_.-]{3,255}$", t.table_name))])
    error_message = "tables[*].table_name must be a DynamoDB table name: 3 to 255 of a-z, A-Z, 0-9, '_', '-' and '.'."
  }
  validation {
    condition     = alltrue([for t in values(var.tables) : t.peer_table_name == null || can(regex("^[a-zA-Z0-9_.-]{3,255}$", t.peer_table_name))])
    error_message = "tables[*].peer_table_name must be a DynamoDB table name: 3 to 255 of a-z, A-Z, 0-9, '_', '-' and '.'."
  }
  validation {
    condition     = alltrue([for t in values(var.tables) : try(t.residency.export_filter == null, true) || try(length(trimspace(t.residency.export_filter)) > 0 && length(t.residency.export_filter) <= 1024, false)])
    error_message = "tables[*].residency.export_filter must be a JMESPath expression of 1 to 1,024 characters, or null (every item crosses)."
  }
  validation {
    condition     = alltrue([for t in values(var.tables) : alltrue([for a in coalesce(try(t.residency.excluded_attributes, null), []) : a != null && try(length(a) > 0, false)])])
    error_message = "tables[*].residency.excluded_attributes must hold attribute names, none empty."
  }
  validation {
    condition     = alltrue([for t in values(var.tables) : length(distinct(coalesce(try(t.residency.excluded_attributes, null), []))) == length(coalesce(try(t.residency.excluded_attributes, null), []))])
    error_message = "tables[*].residency.excluded_attributes names an attribute twice."
  }
}

variable "tombstone_point_in_time_recovery" {
  description = "Point-in-time recovery on the tombstone table (shared by all tables)."
  type        = bool
  default     = true
}

variable "timestamp_attribute" {
  description = "Item attribute that carries the version timestamp (last writer wins). Must be the same on both sides."
  type        = string
  default     = "last_update_timestamp"
}

variable "origin_attribute" {
  description = "Item attribute that carries the region that wrote the version. Must be the same on both sides."
  type        = string
  default     = "last_updater_region"
}

variable "local_region_name" {
  description = "Name written as the origin of local changes. Null: the function's AWS region."
  type        = string
  default     = null
}

variable "tombstone_ttl_seconds" {
  description = "How long a delete is remembered in the tombstone table, so that an older write from the peer cannot resurrect the item. 30 days covers any realistic replication delay, including redrives from the failure queue."
  type        = number
  default     = 2592000
}

variable "max_clock_skew_seconds" {
  description = "How far ahead of the functions' clock a version (timestamp attribute) may be. A local write with a version further ahead is stamped as if it had none, a peer change with one is refused to the failure queue, and no delete or tombstone is ever written with one: a timestamp in milliseconds or a clock years fast cannot freeze an item. 300 s is the tolerance AWS gives signed requests; use the same value on both sides (MAX_CLOCK_SKEW_SECONDS)."
  type        = number
  default     = 300

  validation {
    condition     = var.max_clock_skew_seconds == floor(var.max_clock_skew_seconds) && var.max_clock_skew_seconds >= 1 && var.max_clock_skew_seconds <= 86400
    error_message = "max_clock_skew_seconds must be a whole number of seconds from 1 to 86,400 (one day)."
  }
}

################################################################################
# Peer (the other partition)
################################################################################

variable "peer_region" {
  description = "Region of the peer side (for example us-east-1 when this side is cn-north-1)."
  type        = string
  default     = "us-east-1"
}

variable "peer_inbox_stream_name" {
  description = "Name of the peer's inbox Kinesis stream (the peer module's inbox_stream_name output)."
  type        = string
  default     = "ddbrep-inbox"
}

variable "peer_endpoint_url" {
  description = "Override of the peer Kinesis endpoint (a VPC endpoint, a private link, a test server). Null: the public endpoint of peer_region."
  type        = string
  default     = null
}

variable "peer_https_proxy" {
  description = "HTTPS proxy for the forwarder's calls to the peer, for example http://proxy.internal:443. Null: direct through the NAT gateway. The module's security group only allows port 443 out."
  type        = string
  default     = null
}

variable "peer_max_record_bytes" {
  description = "Largest record the peer inbox accepts, data and partition key together: 1048576 (1 MiB, the Kinesis default) to 10485760 (10 MiB, the most UpdateMaxRecordSize allows). Raise it only after raising the peer stream's maximum record size."
  type        = number
  default     = 1048576

  validation {
    condition     = var.peer_max_record_bytes >= 1048576 && var.peer_max_record_bytes <= 10485760 && var.peer_max_record_bytes % 1024 == 0
    error_message = "peer_max_record_bytes must be a whole number of KiB from 1048576 (1 MiB) to 10485760 (10 MiB), the stream's maximum record size."
  }
}

variable "peer_credentials_secret_name" {
  description = "Name of the Secrets Manager secret that holds the peer partition's credentials. Null: \"<name>/peer-credentials\"."
  type        = string
  default     = null
}

variable "peer_credentials" {
  description = "The peer-writer access key of the PEER partition, stored as the secret's value. Null (default): Terraform creates the secret empty and never sees the key, so no credential lands in the state; fill it with `ddb-replication credentials` or `aws secretsmanager put-secret-value`."
  type = object({
    aws_access_key_id     = string
    aws_secret_access_key = string
  })
  default   = null
  sensitive = true
}

variable "secret_recovery_window_in_days" {
  description = "Days Secrets Manager keeps the deleted secret recoverable: 0 (delete at once) or 7 to 30."
  type        = number
  default     = 7

  validation {
    condition     = var.secret_recovery_window_in_days == 0 || (var.secret_recovery_window_in_days >= 7 && var.secret_recovery_window_in_days <= 30)
    error_message = "secret_recovery_window_in_days must be 0 or between 7 and 30."
  }
}

variable "secret_max_age_seconds" {
  description = "How long the forwarder caches the peer credentials. 300 s picks up a rotated key within five minutes."
  type        = number
  default     = 300

  validation {
    condition     = var.secret_max_age_seconds >= 0 && var.secret_max_age_seconds <= 86400 && floor(var.secret_max_age_seconds) == var.secret_max_age_seconds
    error_message = "secret_max_age_seconds must be a whole number of seconds from 0 to 86400."
  }
}

variable "create_peer_writer_user" {
  description = "With peer_writer_authentication = access_key: create the IAM user whose only permission is writing into this side's inbox. Its access key (created outside Terraform) goes into the PEER's secret (a role cannot be assumed across partitions with an access key). Never created with roles_anywhere."
  type        = bool
  default     = true
}

variable "peer_writer_allowed_source_ips" {
  description = "Source addresses (CIDR) the peer-writer may write from (aws:SourceIp): the PEER's nat_public_ips as /32, plus the operator's addresses for the `ddb-replication credentials`/`rotate` probe. Empty (default): any address, the credentials alone (the access key, or the certificate behind a Roles Anywhere session) protect the inbox. Set it once both sides exist."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.peer_writer_allowed_source_ips : can(cidrhost(cidr, 0))])
    error_message = "peer_writer_allowed_source_ips must be CIDR blocks, such as 203.0.113.10/32."
  }
}

################################################################################
# How the PEER's forwarder authenticates to this side (rolesanywhere.tf)
################################################################################

variable "peer_writer_authentication" {
  description = "How the peer's forwarder gets its right to write into this side's inbox. access_key: the peer-writer IAM user, whose access key the peer's secret holds. roles_anywhere: no IAM user; an IAM Roles Anywhere trust anchor (roles_anywhere_ca_certificate), a profile and the peer-writer role, which the peer's forwarder assumes with CreateSession and a leaf certificate of the pair's CA (CN \"<peer_name>.forwarder.<peer_region>\"), for short-lived credentials only."
  type        = string
  default     = "roles_anywhere"

  validation {
    condition     = contains(["access_key", "roles_anywhere"], var.peer_writer_authentication)
    error_message = "peer_writer_authentication must be access_key (the peer-writer IAM user and its key) or roles_anywhere (an IAM Roles Anywhere trust anchor, profile and role)."
  }
}

variable "roles_anywhere_ca_certificate" {
  description = "The pair's certificate authority in PEM (`ddb-replication ca init` writes it to DIR/ca.pem): one or more certificates, nothing else, at most 8,000 characters. Required with peer_writer_authentication = roles_anywhere: it becomes the trust anchor's CERTIFICATE_BUNDLE (ACM Private CA trust anchors are not available in the China regions). Only the certificate: the CA's private key stays with the operator."
  type        = string
  default     = null

  validation {
    # A trust anchor's x509CertificateData holds 1 to 8,000 characters (API_SourceData). Each block:
    # DER in base64, and a DER certificate starts with a SEQUENCE of long-form length (0x30 0x81..0x83),
    # which is "MI" in base64.
    condition = var.roles_anywhere_ca_certificate == null || try(
      length(var.roles_anywhere_ca_certificate) <= 8000 &&
      can(regex("^\\s*(-----BEGIN CERTIFICATE-----\\s+[A-Za-z0-9+/=\\s]+-----END CERTIFICATE-----\\s*)+$", var.roles_anywhere_ca_certificate)) &&
      alltrue([
        for body in regexall("-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\\s]+)-----END CERTIFICATE-----", var.roles_anywhere_ca_certificate) :
        startswith(replace(body[0], "/\\s/", ""), "MI") && length(replace(body[0], "/\\s/", "")) % 4 == 0
      ]),
      false
    )
    error_message = "roles_anywhere_ca_certificate must be the pair's CA certificate in PEM (-----BEGIN CERTIFICATE----- base64 -----END CERTIFICATE-----, one or more, nothing else: never a private key), at most 8,000 characters; `ddb-replication ca init --dir DIR` writes it to DIR/ca.pem."
  }
}

variable "roles_anywhere_session_duration_seconds" {
  description = "How long the credentials the peer's forwarder gets from CreateSession last (the profile's durationSeconds), 900 to 3600 s. 3600 (default) is one CreateSession per forwarder container about every 45 minutes: botocore renews refreshable credentials from 15 minutes before they expire, so 900 would renew on every call. The peer's forwarder must not ask for more than this."
  type        = number
  default     = 3600

  validation {
    condition     = var.roles_anywhere_session_duration_seconds >= 900 && var.roles_anywhere_session_duration_seconds <= 3600 && floor(var.roles_anywhere_session_duration_seconds) == var.roles_anywhere_session_duration_seconds
    error_message = "roles_anywhere_session_duration_seconds must be a whole number of seconds from 900 (CreateSession's shortest) to 3600 (the peer-writer role's maximum session duration)."
  }
}

variable "roles_anywhere_certificate_expiry_days" {
  description = "roles_anywhere mode: IAM Roles Anywhere notifies (EventBridge, AWS Health) from this many days before an end-entity certificate used here (the peer forwarder's) expires, daily, and the module's rule sends that to the alarm topics; `ddb-replication status` flags the certificate from the same day. 1 to 360 days; keep it below the certificates' validity (30 days from `ddb-replication credentials`, which renews one with 10 days or less left, before this default of 7)."
  type        = number
  default     = 7

  validation {
    condition     = var.roles_anywhere_certificate_expiry_days >= 1 && var.roles_anywhere_certificate_expiry_days <= 360 && floor(var.roles_anywhere_certificate_expiry_days) == var.roles_anywhere_certificate_expiry_days
    error_message = "roles_anywhere_certificate_expiry_days must be a whole number of days from 1 to 360 (IAM Roles Anywhere's notification threshold)."
  }
}

variable "roles_anywhere_ca_certificate_expiry_days" {
  description = "roles_anywhere mode: IAM Roles Anywhere notifies (EventBridge, AWS Health, the CloudWatch metric DaysToExpiry) from this many days before the pair's CA certificate in the trust anchor expires, daily, and the module's rule sends that to the alarm topics. Replacing the CA means both roots applied with the new ca.pem and every forwarder given a new certificate: 90 days by default. 1 to 360 days."
  type        = number
  default     = 90

  validation {
    condition     = var.roles_anywhere_ca_certificate_expiry_days >= 1 && var.roles_anywhere_ca_certificate_expiry_days <= 360 && floor(var.roles_anywhere_ca_certificate_expiry_days) == var.roles_anywhere_ca_certificate_expiry_days
    error_message = "roles_anywhere_ca_certificate_expiry_days must be a whole number of days from 1 to 360 (IAM Roles Anywhere's notification threshold)."
  }
}

variable "peer_name" {
  description = "The peer side's name (its module's name). Null: this side's name. The peer-writer role trusts only the certificate whose subject CN is \"<peer_name>.forwarder.<peer_region>\" (roles_anywhere mode)."
  type        = string
  default     = null

  validation {
    condition     = var.peer_name == null || can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,31}$", var.peer_name))
    error_message = "peer_name must start with a letter and hold at most 32 letters, digits and hyphens, like name."
  }
}

variable "peer_rolesanywhere_endpoint" {
  description = "host[:port] of IAM Roles Anywhere in the peer's partition for this side's forwarder's CreateSession calls (PEER_ROLESANYWHERE_ENDPOINT), without a scheme: it is always called over HTTPS. Null: the public endpoint of peer_region (rolesanywhere.<peer_region>.amazonaws.com, .com.cn in China). Used when this side's secret holds a certificate."
  type        = string
  default     = null

  validation {
    condition     = var.peer_rolesanywhere_endpoint == null || can(regex("^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$", var.peer_rolesanywhere_endpoint))
    error_message = "peer_rolesanywhere_endpoint must be a host name or address with an optional port, such as rolesanywhere.us-east-1.amazonaws.com or 127.0.0.1:19443, without https:// (the call is always HTTPS)."
  }
}

################################################################################
# Inbox (Kinesis stream the peer writes into)
################################################################################

variable "inbox_stream_mode" {
  description = "Capacity mode of the inbox stream: ON_DEMAND (default: no shard planning, never throttles a burst from the peer) or PROVISIONED (cheaper at steady, low traffic)."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.inbox_stream_mode)
    error_message = "inbox_stream_mode must be ON_DEMAND or PROVISIONED."
  }
}

variable "inbox_shard_count" {
  description = "Shards of the inbox stream when inbox_stream_mode is PROVISIONED (each takes 1 MB/s or 1,000 records/s)."
  type        = number
  default     = 1
}

variable "inbox_retention_hours" {
  description = "Retention of the inbox stream in hours (24 to 8760). 48 h leaves a day to redrive failed batches after the mappings' maximum record age."
  type        = number
  default     = 48
}

################################################################################
# Lambda functions
################################################################################

variable "forwarder_zip_path" {
  description = "Path of the forwarder zip built by `make package`, for `lambda_architecture`. Null: dist/<lambda_architecture>/forwarder.zip of this repository."
  type        = string
  default     = null
}

variable "replicator_zip_path" {
  description = "Path of the replicator zip built by `make package`, for `lambda_architecture`. Null: dist/<lambda_architecture>/replicator.zip of this repository."
  type        = string
  default     = null
}

variable "lambda_runtime" {
  description = "Lambda runtime of both functions (the zips are built for it)."
  type        = string
  default     = "python3.12"
}

variable "lambda_architecture" {
  description = "Instruction set of both functions: x86_64 or arm64. The zips are pure Python, so both work; arm64 is cheaper."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "forwarder_memory_size" {
  description = "Memory of the forwarder in MB (CPU grows with it). 512 MB serialises a full batch quickly."
  type        = number
  default     = 512
}

variable "forwarder_timeout" {
  description = "Timeout of the forwarder in seconds, 30 to 900. 120 s leaves room for retried PutRecords calls across the partition boundary. The forwarder starts a PutRecords call only with 16 s left before its deadline (two tries of 3 s connect + 5 s read) and keeps 5 s for itself: below 30 s, a batch's local writes can leave no time for any call, and every invocation fails."
  type        = number
  default     = 120

  validation {
    condition     = var.forwarder_timeout >= 30 && var.forwarder_timeout <= 900 && floor(var.forwarder_timeout) == var.forwarder_timeout
    error_message = "forwarder_timeout must be a whole number of seconds from 30 to 900: one PutRecords attempt needs 16 s and the forwarder keeps 5 s back, so with less every invocation fails."
  }
}

variable "forwarder_reserved_concurrency" {
  description = "Reserved concurrency of the forwarder. -1: unreserved. Needs at most (table stream shards x parallelization factor)."
  type        = number
  default     = -1
}

variable "replicator_memory_size" {
  description = "Memory of the replicator in MB, 512 to 10240. It bounds how much a batch may decode at once (60% of it, at up to 48 bytes per byte of inflated record): 512 MB admits 6.4 MiB per run of records, more than any forwarder sends in one record (its own event is at most 6 MB); with less, records a forwarder made could be refused."
  type        = number
  default     = 512

  validation {
    condition     = var.replicator_memory_size >= 512 && var.replicator_memory_size <= 10240 && floor(var.replicator_memory_size) == var.replicator_memory_size
    error_message = "replicator_memory_size must be a whole number of MB from 512 to 10240: with less, the replicator cannot decode every record a forwarder may send."
  }
}

variable "replicator_timeout" {
  description = "Timeout of the replicator in seconds."
  type        = number
  default     = 60
}

variable "replicator_reserved_concurrency" {
  description = "Reserved concurrency of the replicator. -1: unreserved. Needs at most (inbox shards x parallelization factor)."
  type        = number
  default     = -1
}

variable "replicator_apply_concurrency" {
  description = "Parallel DynamoDB writers per batch in the replicator (APPLY_CONCURRENCY)."
  type        = number
  default     = 16
}

variable "replicator_in_vpc" {
  description = "Attach the replicator to the private subnets too. false (default): it only reaches DynamoDB, Kinesis (through its mapping) and SQS in its own region, so a VPC adds cold-start time and NAT traffic for nothing."
  type        = bool
  default     = false
}

variable "log_level" {
  description = "POWERTOOLS_LOG_LEVEL of both functions."
  type        = string
  default     = "INFO"
}

variable "conflict_log_sample_rate" {
  description = "Probability (0 to 1) that a conflict the engine resolves (a stale change dropped, a tie broken, a delete that won, a write stamped) is logged by the function that resolved it; every conflict is counted in the Conflicts metric whatever this says (docs/conflict-rules.md, \"Conflicts on record\"; CONFLICT_LOG_SAMPLE_RATE)."
  type        = number
  default     = 1

  validation {
    condition     = var.conflict_log_sample_rate >= 0 && var.conflict_log_sample_rate <= 1
    error_message = "conflict_log_sample_rate must be a number from 0 to 1."
  }
}

variable "conflict_log_max_lines" {
  description = "At most this many conflict lines per function invocation (a uniform sample of those conflict_log_sample_rate lets through), so a burst of conflicts costs a bounded number of log lines: 0 (none) to 1,000 (CONFLICT_LOG_MAX_LINES)."
  type        = number
  default     = 20

  validation {
    condition     = var.conflict_log_max_lines == floor(var.conflict_log_max_lines) && var.conflict_log_max_lines >= 0 && var.conflict_log_max_lines <= 1000
    error_message = "conflict_log_max_lines must be a whole number from 0 to 1,000."
  }
}

variable "conflict_log_keys" {
  description = "Log the item's key itself in each conflict line, not only its SHA-256 digest. Keys may be personal data: false (default) logs the digest alone; never the key of an item this side's residency rules keep here, never item contents (CONFLICT_LOG_KEYS)."
  type        = bool
  default     = false

  validation {
    condition     = var.conflict_log_keys != null
    error_message = "conflict_log_keys must be true or false."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing of both functions: PassThrough (default, no cost) or Active (the roles then get the X-Ray write actions, which cannot be scoped to a resource)."
  type        = string
  default     = "PassThrough"

  validation {
    condition     = contains(["PassThrough", "Active"], var.tracing_mode)
    error_message = "tracing_mode must be PassThrough or Active."
  }
}

variable "forwarder_environment" {
  description = "Extra environment variables of the forwarder (merged last, so they can override the module's)."
  type        = map(string)
  default     = {}
}

variable "replicator_environment" {
  description = "Extra environment variables of the replicator (merged last, so they can override the module's)."
  type        = map(string)
  default     = {}
}

################################################################################
# Event source mappings
################################################################################

variable "starting_position" {
  description = "Where both mappings start reading when created. TRIM_HORIZON (default) loses nothing written before the mapping existed; replaying is harmless because versions make writes idempotent. LATEST skips the backlog."
  type        = string
  default     = "TRIM_HORIZON"

  validation {
    condition     = contains(["TRIM_HORIZON", "LATEST"], var.starting_position)
    error_message = "starting_position must be TRIM_HORIZON or LATEST."
  }
}

variable "forwarder_batch_size" {
  description = "Records per forwarder invocation (1 to 10,000). 500 fills one PutRecords call to the peer."
  type        = number
  default     = 500
}

variable "latency_profile" {
  description = "How quickly a change crosses, against what it costs (docs/architecture.md, Latency profiles). standard (default): the table-stream mapping waits up to 1 s to fill a batch, and Lambda polls the inbox with a standard iterator, once a second per shard. low_latency: no batching window (a batch per stream read, so more Kinesis records per change), and the replicator reads the inbox through an enhanced fan-out consumer (aws_kinesis_stream_consumer), which pushes records about 70 ms after they are written; the consumer is charged per consumer-shard hour and per GB read. Enhanced fan-out is available in both partitions, China's included."
  type        = string
  default     = "standard"

  validation {
    condition     = contains(["standard", "low_latency"], var.latency_profile)
    error_message = "latency_profile must be standard or low_latency."
  }
}

variable "forwarder_batching_window_seconds" {
  description = "Seconds the table-stream mapping waits to fill a batch (0 to 300, whole seconds). null (default): the latency profile's, 1 s for standard (a second of latency for fewer, fuller calls across the partition boundary) and 0 for low_latency."
  type        = number
  default     = null

  validation {
    condition     = var.forwarder_batching_window_seconds == null || try(var.forwarder_batching_window_seconds >= 0 && var.forwarder_batching_window_seconds <= 300 && floor(var.forwarder_batching_window_seconds) == var.forwarder_batching_window_seconds, false)
    error_message = "forwarder_batching_window_seconds must be a whole number of seconds from 0 to 300, or null for the latency profile's."
  }
}

variable "forwarder_parallelization_factor" {
  description = "Concurrent batches per table-stream shard (1 to 10). Order is kept per item at any value; 1 is enough unless a shard's changes pile up (watch the iterator age alarm)."
  type        = number
  default     = 1
}

variable "forwarder_maximum_retry_attempts" {
  description = "Retries of a failed forwarder batch. -1 (default): retry until maximum record age, because most forwarder failures are the peer being unreachable, which heals; giving up early would only push work into manual redrives."
  type        = number
  default     = -1
}

variable "forwarder_maximum_record_age_seconds" {
  description = "Age after which a table-stream batch goes to the failure queue instead of being retried (-1 or 60 to 604,800). 21,600 s (6 h) leaves 18 h of the stream's 24 h retention to redrive it from the failure queue's batch metadata."
  type        = number
  default     = 21600
}

variable "replicator_batch_size" {
  description = "Records per replicator invocation (1 to 10,000). 100 keeps an invocation short with APPLY_CONCURRENCY parallel writers."
  type        = number
  default     = 100
}

variable "replicator_batching_window_seconds" {
  description = "Seconds the inbox mapping waits to fill a batch (0 to 300). 0: apply as soon as records arrive (lowest replication latency)."
  type        = number
  default     = 0
}

variable "replicator_parallelization_factor" {
  description = "Concurrent batches per inbox shard (1 to 10). Order is kept per partition key (one item) at any value."
  type        = number
  default     = 1
}

variable "replicator_maximum_retry_attempts" {
  description = "Retries of a failed replicator batch. -1 (default): retry until maximum record age. Poison records do not block: the replicator sends them to the failure queue itself and reports success, so what fails a batch is transient (throttling, an outage)."
  type        = number
  default     = -1
}

variable "replicator_maximum_record_age_seconds" {
  description = "Age after which an inbox batch goes to the failure queue instead of being retried (-1 or 60 to 604,800). 21,600 s (6 h) is well inside the inbox retention, leaving time to redrive."
  type        = number
  default     = 21600
}

variable "failure_queue_retention_seconds" {
  description = "Message retention of the failure queue. 1,209,600 s (14 days, the SQS maximum) gives operators the longest time to look at and redrive failures."
  type        = number
  default     = 1209600
}

################################################################################
# Network (forwarder egress)
################################################################################

variable "create_vpc" {
  description = "Create a VPC whose private subnets reach the internet through NAT gateways with Elastic IPs (the forwarder's stable egress addresses, for the peer to allowlist). false: give subnet_ids and security_group_ids, or neither to run the forwarder outside any VPC."
  type        = bool
  default     = true
}

variable "vpc_cidr" {
  description = "CIDR block of the created VPC. It is split into /(n+4) subnets: private ones first, public ones from the middle."
  type        = string
  default     = "10.80.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones of the created subnets. Empty: the first az_count regular zones of the region (sorted by name)."
  type        = list(string)
  default     = []
}

variable "az_count" {
  description = "Number of availability zones used when availability_zones is empty. At least 2, so that the forwarder survives the loss of a zone."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 8
    error_message = "az_count must be between 2 and 8."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway (and one Elastic IP) for all zones instead of one per zone. Cheaper, but the forwarder loses egress while that zone is down."
  type        = bool
  default     = false
}

variable "create_dynamodb_vpc_endpoint" {
  description = "Add a DynamoDB gateway endpoint to the private route tables, so the forwarder's table and tombstone writes skip the NAT gateway (free, and faster)."
  type        = bool
  default     = true
}

variable "enable_flow_logs" {
  description = "Send the created VPC's flow logs (all traffic) to an encrypted CloudWatch log group."
  type        = bool
  default     = true
}

variable "subnet_ids" {
  description = "Subnets of your own for the forwarder when create_vpc is false. They need a route to the internet (or to peer_endpoint_url / peer_https_proxy)."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups of your own for the forwarder when create_vpc is false. They must allow HTTPS out."
  type        = list(string)
  default     = []
}

################################################################################
# Monitoring
################################################################################

variable "create_alarms" {
  description = "Create the CloudWatch alarms: iterator age of both mappings, errors of both functions, failure queue depth, poison messages."
  type        = bool
  default     = true
}

variable "create_sns_topic" {
  description = "Create an encrypted SNS topic that receives every alarm (subscribe to it yourself)."
  type        = bool
  default     = false
}

variable "alarm_actions" {
  description = "Further ARNs (SNS topics and the like) notified when an alarm fires and when it clears."
  type        = list(string)
  default     = []
}

variable "iterator_age_alarm_threshold_ms" {
  description = "Iterator age (ms) above which a mapping's alarm fires: changes that old are waiting to be replicated. 300,000 (5 minutes) is far above normal latency and far below the stream retention."
  type        = number
  default     = 300000
}

variable "function_errors_alarm_threshold" {
  description = "Function errors per 5 minutes at or above which a function's alarm fires."
  type        = number
  default     = 1
}

variable "alarm_evaluation_periods" {
  description = "Consecutive 5-minute periods a condition must hold before an alarm fires. 2 ignores a single blip (a cold start, a short network glitch)."
  type        = number
  default     = 2
}

variable "create_dashboard" {
  description = "Create a CloudWatch dashboard with the engine metrics of both functions side by side."
  type        = bool
  default     = true
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the engine metrics (POWERTOOLS_METRICS_NAMESPACE)."
  type        = string
  default     = "DynamoDBReplication"
}
