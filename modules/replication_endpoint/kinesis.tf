################################################################################
# Inbox: the peer's forwarder writes here, the replicator reads from here
################################################################################

resource "aws_kinesis_stream" "inbox" {
  name             = local.inbox_stream_name
  retention_period = var.inbox_retention_hours
  shard_count      = var.inbox_stream_mode == "PROVISIONED" ? var.inbox_shard_count : null

  stream_mode_details {
    stream_mode = var.inbox_stream_mode
  }

  encryption_type = "KMS"
  kms_key_id      = local.kms_key_arn

  tags = local.tags

  lifecycle {
    # Tags are set when the stream is created (CreateStream carries them). Later changes are ignored
    # because moto, the local test server, drops CreateStream's tags and would show drift on every
    # plan. To change the inbox's tags afterwards: aws kinesis add-tags-to-stream.
    ignore_changes = [tags, tags_all]
  }
}

# low_latency: the replicator's enhanced fan-out consumer. Kinesis pushes each shard's records to it over
# SubscribeToShard (about 70 ms average propagation, "Develop enhanced fan-out consumers with dedicated
# throughput", Kinesis Data Streams developer guide) instead of Lambda polling once a second; charged per
# consumer-shard hour and per GB retrieved (docs/architecture.md, Latency profiles).
resource "aws_kinesis_stream_consumer" "replicator" {
  count = local.low_latency ? 1 : 0

  name       = local.replicator_name
  stream_arn = aws_kinesis_stream.inbox.arn
}
