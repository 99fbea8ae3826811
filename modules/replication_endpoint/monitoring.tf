################################################################################
# Alarms, their optional SNS topic, and the dashboard
################################################################################

locals {
  alarm_actions = concat(aws_sns_topic.alarms[*].arn, var.alarm_actions)

  # The engine's metrics carry one dimension, `service` (POWERTOOLS_SERVICE_NAME = function name).
  forwarder_metric_dimensions  = { service = local.forwarder_name }
  replicator_metric_dimensions = { service = local.replicator_name }

  alarms = {
    "forwarder-iterator-age" = {
      description = "Changes of ${local.table_name} wait more than ${var.iterator_age_alarm_threshold_ms} ms to be forwarded to ${var.peer_region}: the forwarder is failing or too slow."
      namespace   = "AWS/Lambda"
      metric_name = "IteratorAge"
      dimensions  = { FunctionName = local.forwarder_name }
      statistic   = "Maximum"
      threshold   = var.iterator_age_alarm_threshold_ms
      periods     = var.alarm_evaluation_periods
    }
    "replicator-iterator-age" = {
      description = "Changes from ${var.peer_region} wait more than ${var.iterator_age_alarm_threshold_ms} ms in ${local.inbox_stream_name}: the replicator is failing or too slow."
      namespace   = "AWS/Lambda"
      metric_name = "IteratorAge"
      dimensions  = { FunctionName = local.replicator_name }
      statistic   = "Maximum"
      threshold   = var.iterator_age_alarm_threshold_ms
      periods     = var.alarm_evaluation_periods
    }
    "forwarder-errors" = {
      description = "The forwarder ${local.forwarder_name} fails (its batches are retried; see its logs)."
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      dimensions  = { FunctionName = local.forwarder_name }
      statistic   = "Sum"
      threshold   = var.function_errors_alarm_threshold
      periods     = var.alarm_evaluation_periods
    }
    "replicator-errors" = {
      description = "The replicator ${local.replicator_name} fails (its batches are retried; see its logs)."
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      dimensions  = { FunctionName = local.replicator_name }
      statistic   = "Sum"
      threshold   = var.function_errors_alarm_threshold
      periods     = var.alarm_evaluation_periods
    }
    "failure-queue-depth" = {
      description = "Messages in ${local.failure_queue_name}: batches or poison messages that replication gave up on. Inspect and redrive them (ddb-replication redrive)."
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = local.failure_queue_name }
      statistic   = "Maximum"
      threshold   = 1
      periods     = 1
    }
    "poison-messages" = {
      description = "The replicator ${local.replicator_name} received messages it can never apply and sent them to ${local.failure_queue_name}."
      namespace   = var.metrics_namespace
      metric_name = "PoisonMessages"
      dimensions  = local.replicator_metric_dimensions
      statistic   = "Sum"
      threshold   = 1
      periods     = 1
    }
    "items-too-large-to-version" = {
      description = "Local writes to ${local.table_name} that cannot carry a version (with it the item would exceed 400 KB) are not replicated; their key digests are in ${local.failure_queue_name}. Shrink the items (docs/conflict-rules.md, Item size)."
      namespace   = var.metrics_namespace
      metric_name = "ItemsTooLargeToVersion"
      dimensions  = local.forwarder_metric_dimensions
      statistic   = "Sum"
      threshold   = 1
      periods     = 1
    }
    "changes-refused" = {
      description = "The replicator ${local.replicator_name} refused changes it can never apply (DynamoDB would refuse them: key schema, item size, numbers; or the engine does: versions ahead of its clock, reserved names) and sent where they are and why to ${local.failure_queue_name}; the rest was applied."
      namespace   = var.metrics_namespace
      metric_name = "ChangesRefused"
      dimensions  = local.replicator_metric_dimensions
      statistic   = "Sum"
      threshold   = 1
      periods     = 1
    }
    # Configuration errors (access denied, a missing table or stream, credentials the peer rejects, an
    # unknown error) are retried, never dropped: only a person can end them.
    "forwarder-configuration-errors" = {
      description = "The forwarder ${local.forwarder_name} keeps failing for a reason only a person can fix (access denied, missing stream or table, rejected peer credentials): its batches are retried until then. See its log group."
      namespace   = var.metrics_namespace
      metric_name = "ConfigurationErrors"
      dimensions  = local.forwarder_metric_dimensions
      statistic   = "Sum"
      threshold   = 1
      periods     = 1
    }
    "versions-ahead-refused" = {
      description = "The replicator ${local.replicator_name} refused changes from ${var.peer_region} whose version is more than ${var.max_clock_skew_seconds} s ahead of its clock; they are in ${local.failure_queue_name}. Check the writers' clocks and timestamp units."
      namespace   = var.metrics_namespace
      metric_name = "VersionsAheadRefused"
      dimensions  = local.replicator_metric_dimensions
      statistic   = "Sum"
      threshold   = 1
      periods     = 1
    }
    "reserved-attributes-refused" = {
      description = "The replicator ${local.replicator_name} refused changes from ${var.peer_region} that carry attribute names the engine reserves (_ddbrep_*); they are in ${local.failure_queue_name}."
      namespace   = var.metrics_namespace
      metric_name = "ReservedAttributesRefused"
      dimensions  = local.replicator_metric_dimensions
      statistic   = "Sum"
      threshold   = 1
      periods     = 1
    }
    "replicator-configuration-errors" = {
      description = "The replicator ${local.replicator_name} keeps failing for a reason only a person can fix (access denied, missing table or queue): its records are retried until then. See its log group."
      namespace   = var.metrics_namespace
      metric_name = "ConfigurationErrors"
      dimensions  = local.replicator_metric_dimensions
      statistic   = "Sum"
      threshold   = 1
      periods     = 1
    }
  }
}

resource "aws_sns_topic" "alarms" {
  count = var.create_sns_topic ? 1 : 0

  name              = "${var.name}-replication-alarms"
  kms_master_key_id = local.kms_key_arn

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = var.create_alarms ? local.alarms : {}

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = each.value.periods
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

################################################################################
# Dashboard: the engine's metrics of both functions side by side
################################################################################

locals {
  engine_metric = {
    forwarder  = [for k, v in local.forwarder_metric_dimensions : [k, v]][0]
    replicator = [for k, v in local.replicator_metric_dimensions : [k, v]][0]
  }

  engine_widgets = [
    { title = "Changes forwarded / received / applied", stat = "Sum", metrics = [["ChangesForwarded", "forwarder"], ["ChangesReceived", "replicator"], ["ChangesApplied", "replicator"]] },
    { title = "Changes dropped as stale / tombstoned", stat = "Sum", metrics = [["StaleDropped", "replicator"], ["TombstoneHits", "replicator"]] },
    { title = "Replication latency (ms, p50 / p99)", stat = "p50", metrics = [["ReplicationLatency", "replicator"]], p99 = true },
    { title = "Echoes suppressed / local writes stamped", stat = "Sum", metrics = [["EchoesSuppressed", "forwarder"], ["ChangesStamped", "forwarder"]] },
    { title = "Bytes sent to the peer", stat = "Sum", metrics = [["BytesSent", "forwarder"]] },
    { title = "Sent to the failure queue: poison messages, refused changes", stat = "Sum", metrics = [["PoisonMessages", "replicator"], ["ChangesRefused", "replicator"], ["ChangesRefused", "forwarder"]] },
    { title = "Local writes stamped for an invalid / ahead version / reserved name", stat = "Sum", metrics = [["InvalidVersionsStamped", "forwarder"], ["VersionsAheadStamped", "forwarder"], ["ReservedAttributesStamped", "forwarder"]] },
    { title = "Not replicated: items too large to version / peer changes refused", stat = "Sum", metrics = [["ItemsTooLargeToVersion", "forwarder"], ["VersionsAheadRefused", "replicator"], ["ReservedAttributesRefused", "replicator"]] },
    { title = "Retried: configuration and transient errors", stat = "Sum", metrics = [["ConfigurationErrors", "forwarder"], ["ConfigurationErrors", "replicator"], ["TransientErrors", "forwarder"], ["TransientErrors", "replicator"]] },
  ]
  # The engine's widgets fill rows of two, 6 high; the AWS widgets go below them.
  engine_widgets_height = ceil(length(local.engine_widgets) / 2) * 6

  dashboard_widgets = concat(
    [for i, w in local.engine_widgets : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title  = w.title
        region = local.region
        view   = "timeSeries"
        stat   = w.stat
        period = 60
        metrics = concat(
          [for m in w.metrics : concat([var.metrics_namespace, m[0]], local.engine_metric[m[1]], [{ label = "${m[0]} (${m[1]})" }])],
          try(w.p99, false) ? [for m in w.metrics : concat([var.metrics_namespace, m[0]], local.engine_metric[m[1]], [{ label = "${m[0]} p99", stat = "p99" }])] : [],
        )
      }
    }],
    [
      {
        type   = "metric"
        x      = 0
        y      = local.engine_widgets_height
        width  = 12
        height = 6
        properties = {
          title  = "Iterator age (ms)"
          region = local.region
          view   = "timeSeries"
          stat   = "Maximum"
          period = 60
          metrics = [
            ["AWS/Lambda", "IteratorAge", "FunctionName", local.forwarder_name, { label = "forwarder" }],
            ["AWS/Lambda", "IteratorAge", "FunctionName", local.replicator_name, { label = "replicator" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = local.engine_widgets_height
        width  = 12
        height = 6
        properties = {
          title  = "Function errors and failure queue"
          region = local.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/Lambda", "Errors", "FunctionName", local.forwarder_name, { label = "forwarder errors" }],
            ["AWS/Lambda", "Errors", "FunctionName", local.replicator_name, { label = "replicator errors" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.failure_queue_name, { label = "failure queue depth", stat = "Maximum" }],
          ]
        }
      },
    ],
  )
}

resource "aws_cloudwatch_dashboard" "this" {
  count = var.create_dashboard ? 1 : 0

  dashboard_name = local.dashboard_name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
