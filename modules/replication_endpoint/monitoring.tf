################################################################################
# Alarms, their optional SNS topic, and the dashboard
################################################################################

locals {
  alarm_actions = concat(aws_sns_topic.alarms[*].arn, var.alarm_actions)

  # The engine's metrics carry the dimension `service` (POWERTOOLS_SERVICE_NAME = function name); each
  # table's counts also `table` (its logical name). Records of no table and the endpoint's totals of
  # configuration and transient errors carry `service` alone.
  forwarder_metric_dimensions  = { service = local.forwarder_name }
  replicator_metric_dimensions = { service = local.replicator_name }
  table_metric_dimensions = {
    for name in keys(local.tables) : name => {
      forwarder  = merge(local.forwarder_metric_dimensions, { table = name })
      replicator = merge(local.replicator_metric_dimensions, { table = name })
    }
  }

  # Alarms on one table's metrics, one of each per table ("<table>-<alarm>").
  table_alarms = merge([
    for name, t in local.tables : {
      "${name}-items-too-large-to-version" = {
        description = "Local writes to ${t.table_name} (table ${name}) that cannot carry a version (with it the item would exceed 400 KB) are not replicated; their key digests are in ${local.failure_queue_name}. Shrink the items (docs/conflict-rules.md, Item size)."
        namespace   = var.metrics_namespace
        metric_name = "ItemsTooLargeToVersion"
        dimensions  = local.table_metric_dimensions[name].forwarder
        statistic   = "Sum"
        threshold   = 1
        periods     = 1
      }
      "${name}-changes-refused" = {
        description = "The replicator ${local.replicator_name} refused changes of table ${name} it can never apply (DynamoDB would refuse them: key schema, item size, numbers; or the engine does: versions ahead of its clock, reserved names) and sent where they are and why to ${local.failure_queue_name}; the rest was applied."
        namespace   = var.metrics_namespace
        metric_name = "ChangesRefused"
        dimensions  = local.table_metric_dimensions[name].replicator
        statistic   = "Sum"
        threshold   = 1
        periods     = 1
      }
      "${name}-versions-ahead-refused" = {
        description = "The replicator ${local.replicator_name} refused changes of table ${name} from ${var.peer_region} whose version is more than ${var.max_clock_skew_seconds} s ahead of its clock; they are in ${local.failure_queue_name}. Check the writers' clocks and timestamp units."
        namespace   = var.metrics_namespace
        metric_name = "VersionsAheadRefused"
        dimensions  = local.table_metric_dimensions[name].replicator
        statistic   = "Sum"
        threshold   = 1
        periods     = 1
      }
      "${name}-reserved-attributes-refused" = {
        description = "The replicator ${local.replicator_name} refused changes of table ${name} from ${var.peer_region} that carry attribute names the engine reserves (_ddbrep_*); they are in ${local.failure_queue_name}."
        namespace   = var.metrics_namespace
        metric_name = "ReservedAttributesRefused"
        dimensions  = local.table_metric_dimensions[name].replicator
        statistic   = "Sum"
        threshold   = 1
        periods     = 1
      }
    }
  ]...)

  alarms = merge(local.table_alarms, {
    "forwarder-iterator-age" = {
      description = "Changes of ${join(", ", sort(keys(local.tables)))} wait more than ${var.iterator_age_alarm_threshold_ms} ms to be forwarded to ${var.peer_region}: the forwarder is failing or too slow."
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
    "replicator-configuration-errors" = {
      description = "The replicator ${local.replicator_name} keeps failing for a reason only a person can fix (access denied, missing table or queue): its records are retried until then. See its log group."
      namespace   = var.metrics_namespace
      metric_name = "ConfigurationErrors"
      dimensions  = local.replicator_metric_dimensions
      statistic   = "Sum"
      threshold   = 1
      periods     = 1
    }
  })
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
  # One row per table: its counts on both functions (dimension table), then the endpoint's own row.
  table_widgets = [
    { title = "changes forwarded / received / applied", stat = "Sum", metrics = [["ChangesForwarded", "forwarder"], ["ChangesReceived", "replicator"], ["ChangesApplied", "replicator"]] },
    { title = "stale / tombstoned / echoes / stamped (invalid, ahead, reserved)", stat = "Sum", metrics = [["StaleDropped", "replicator"], ["TombstoneHits", "replicator"], ["EchoesSuppressed", "forwarder"], ["ChangesStamped", "forwarder"], ["InvalidVersionsStamped", "forwarder"], ["VersionsAheadStamped", "forwarder"], ["ReservedAttributesStamped", "forwarder"]] },
    { title = "not replicated: refused / too large / ahead / reserved", stat = "Sum", metrics = [["ChangesRefused", "replicator"], ["ChangesRefused", "forwarder"], ["ItemsTooLargeToVersion", "forwarder"], ["VersionsAheadRefused", "replicator"], ["ReservedAttributesRefused", "replicator"]] },
    # CloudWatch computes the percentiles from the values the replicator emits (EMF, milliseconds):
    # each stage at p50 (docs/architecture.md, Lag by stage), end to end (ReplicationLatency) at p50 and p99.
    { title = "lag by stage (ms, p50) and end to end (p50 / p99)", stat = "p50", metrics = [["StreamToForwarderLatency", "replicator"], ["ForwarderToInboxLatency", "replicator"], ["InboxToApplyLatency", "replicator"], ["ReplicationLatency", "replicator"]], p99 = ["ReplicationLatency"] },
    # What the table's residency rules kept on this side (docs/residency.md).
    { title = "residency: filtered / removals / filter errors", stat = "Sum", metrics = [["ResidencyFiltered", "forwarder"], ["ResidencyRemovals", "forwarder"], ["ResidencyFilterErrors", "forwarder"]] },
    # Every conflict on record (docs/conflict-rules.md): Conflicts by kind, where each is resolved.
    { title = "conflicts: stale dropped / tie broken / delete won / stamped", stat = "Sum", metrics = [for k in local.conflict_kinds : ["Conflicts", k.function, k.kind]] },
  ]
  # The kinds of the Conflicts metric (dimension kind) and the function that resolves each.
  conflict_kinds = [
    { kind = "stale-dropped", function = "replicator" },
    { kind = "tie-broken", function = "replicator" },
    { kind = "delete-won", function = "replicator" },
    { kind = "delete-won", function = "forwarder" },
    { kind = "stamped", function = "forwarder" },
  ]
  # The dashboard grid is 24 units wide: a table's widgets share its row.
  table_widget_width = floor(24 / length(local.table_widgets))
  table_rows = [
    for row, name in sort(keys(local.tables)) : [
      for i, w in local.table_widgets : {
        type   = "metric"
        x      = i * local.table_widget_width
        y      = row * 6
        width  = local.table_widget_width
        height = 6
        properties = {
          title  = "${name}: ${w.title}"
          region = local.region
          view   = "timeSeries"
          stat   = w.stat
          period = 60
          metrics = concat(
            [for m in w.metrics : concat([var.metrics_namespace, m[0]], flatten([for k, v in local.table_metric_dimensions[name][m[1]] : [k, v]]), length(m) > 2 ? ["kind", m[2]] : [], [{ label = length(m) > 2 ? "${m[2]} (${m[1]})" : "${m[0]} (${m[1]})" }])],
            [for m in w.metrics : concat([var.metrics_namespace, m[0]], flatten([for k, v in local.table_metric_dimensions[name][m[1]] : [k, v]]), [{ label = "${m[0]} p99", stat = "p99" }]) if contains(try(w.p99, []), m[0])],
          )
        }
      }
    ]
  ]
  tables_height = length(local.tables) * 6

  dashboard_widgets = concat(
    flatten(local.table_rows),
    [
      {
        type   = "metric"
        x      = 0
        y      = local.tables_height
        width  = 6
        height = 6
        properties = {
          title  = "Endpoint: poison messages, configuration and transient errors"
          region = local.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 60
          metrics = [
            [var.metrics_namespace, "PoisonMessages", "service", local.replicator_name, { label = "PoisonMessages (replicator)" }],
            [var.metrics_namespace, "ConfigurationErrors", "service", local.forwarder_name, { label = "ConfigurationErrors (forwarder)" }],
            [var.metrics_namespace, "ConfigurationErrors", "service", local.replicator_name, { label = "ConfigurationErrors (replicator)" }],
            [var.metrics_namespace, "TransientErrors", "service", local.forwarder_name, { label = "TransientErrors (forwarder)" }],
            [var.metrics_namespace, "TransientErrors", "service", local.replicator_name, { label = "TransientErrors (replicator)" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 6
        y      = local.tables_height
        width  = 6
        height = 6
        properties = {
          title  = "Bytes sent to the peer, per table"
          region = local.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 60
          metrics = [
            for name in sort(keys(local.tables)) : [var.metrics_namespace, "BytesSent", "service", local.forwarder_name, "table", name, { label = name }]
          ]
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = local.tables_height
        width  = 6
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
        x      = 18
        y      = local.tables_height
        width  = 6
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
