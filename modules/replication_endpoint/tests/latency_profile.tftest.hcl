# Plan-only tests of latency_profile: what standard and low_latency set on the mappings, the enhanced
# fan-out consumer and the replicator's grants for it (docs/operations.md, Latency profiles).

mock_provider "aws" {
  override_during = plan
  source          = "./tests/mocks/us-east-1"
}

variables {
  forwarder_zip_path  = "tests/fixtures/forwarder.zip"
  replicator_zip_path = "tests/fixtures/replicator.zip"
  tables              = { table = {} }
  # The profile is independent of how the peer writer authenticates: the mode with no CA to give.
  peer_writer_authentication = "access_key"
}

run "standard_batches_for_a_second_and_polls_the_inbox" {
  command = plan

  assert {
    condition     = aws_lambda_event_source_mapping.forwarder["table"].maximum_batching_window_in_seconds == 1
    error_message = "standard: the table-stream mapping waits up to 1 s to fill a batch."
  }
  assert {
    condition     = length(aws_kinesis_stream_consumer.replicator) == 0 && aws_lambda_event_source_mapping.replicator.event_source_arn == aws_kinesis_stream.inbox.arn
    error_message = "standard: no consumer; the replicator's mapping reads the inbox stream itself (standard iterator)."
  }
  assert {
    condition     = !contains(flatten(jsondecode(aws_iam_role_policy.replicator.policy).Statement[*].Action), "kinesis:SubscribeToShard")
    error_message = "standard: the replicator's role cannot subscribe to the inbox's shards."
  }
}

run "low_latency_sends_each_read_and_reads_through_a_consumer" {
  command = plan

  variables {
    latency_profile = "low_latency"
  }

  assert {
    condition     = aws_lambda_event_source_mapping.forwarder["table"].maximum_batching_window_in_seconds == 0
    error_message = "low_latency: the table-stream mapping has no batching window."
  }
  assert {
    condition     = aws_kinesis_stream_consumer.replicator[0].stream_arn == aws_kinesis_stream.inbox.arn && aws_kinesis_stream_consumer.replicator[0].name == "ddbrep-replicator"
    error_message = "low_latency: one enhanced fan-out consumer of the inbox, named after the replicator."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.replicator.event_source_arn == aws_kinesis_stream_consumer.replicator[0].arn
    error_message = "low_latency: the replicator's mapping reads through the consumer (its ARN is the event source)."
  }
  assert {
    condition = contains(jsondecode(aws_iam_role_policy.replicator.policy).Statement, {
      Sid      = "ReadInboxThroughConsumer"
      Effect   = "Allow"
      Action   = ["kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"]
      Resource = "arn:aws:kinesis:us-east-1:111122223333:stream/ddbrep-inbox/consumer/ddbrep-replicator:*"
    })
    error_message = "low_latency: the replicator's role describes the consumer and subscribes to the shards with it, on the consumer's partition-built ARN only."
  }
}

run "an_explicit_batching_window_wins_over_the_profile" {
  command = plan

  variables {
    latency_profile                   = "low_latency"
    forwarder_batching_window_seconds = 2
  }

  assert {
    condition     = aws_lambda_event_source_mapping.forwarder["table"].maximum_batching_window_in_seconds == 2
    error_message = "A forwarder_batching_window_seconds that is set is the mapping's window, whatever the profile."
  }
}

run "rejects_an_unknown_profile" {
  command = plan

  variables {
    latency_profile = "fast"
  }

  expect_failures = [var.latency_profile]
}

run "rejects_a_fractional_batching_window" {
  command = plan

  variables {
    forwarder_batching_window_seconds = 0.5
  }

  expect_failures = [var.forwarder_batching_window_seconds]
}
