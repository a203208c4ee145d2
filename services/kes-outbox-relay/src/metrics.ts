// The relay's Prometheus metrics, with exactly the names system.md lists (plus a few extras
// that operators need: blocked events, owned lanes, retention).
import { counter, gauge, histogram, type Registry } from '@kvary/platform/metrics';

export function createRelayMetrics(registry: Registry) {
  return {
    up: gauge(registry, { name: 'kes_outbox_relay_up', help: '1 while the relay process runs' }),
    pending: gauge(registry, { name: 'kes_outbox_pending_events', help: 'Outbox rows waiting to be published (all relays see the same value)' }),
    oldestPendingAge: gauge(registry, {
      name: 'kes_outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest pending outbox row, 0 when none',
    }),
    poison: gauge(registry, { name: 'kes_outbox_poison_events', help: 'Outbox rows parked as poison' }),
    blockedEvents: gauge(registry, {
      name: 'kes_outbox_blocked_events',
      help: 'Pending rows waiting behind an earlier poison row of their aggregate (strict order)',
    }),
    blockedAggregates: gauge(registry, { name: 'kes_outbox_blocked_aggregates', help: 'Aggregates stopped by a poison row' }),
    dispatched: counter(registry, {
      name: 'kes_outbox_dispatched_total',
      help: 'Rows acknowledged by Kafka (acks=all) and marked dispatched',
      labelNames: ['topic', 'event_type'] as const,
    }),
    failures: counter(registry, {
      name: 'kes_outbox_publish_failures_total',
      help: 'Failed publish attempts by reason',
      labelNames: ['reason'] as const,
    }),
    lag: histogram(registry, {
      name: 'kes_outbox_dispatch_lag_seconds',
      help: 'From the row insert (clock_timestamp) to the Kafka acknowledgement',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    }),
    batchSize: histogram(registry, {
      name: 'kes_outbox_batch_size',
      help: 'Rows claimed per batch',
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    }),
    pollDuration: histogram(registry, {
      name: 'kes_outbox_poll_duration_seconds',
      help: 'Duration of one claim query',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    }),
    poisoned: counter(registry, { name: 'kes_outbox_poisoned_total', help: 'Rows this relay moved to poison', labelNames: ['reason'] as const }),
    ownedLanes: gauge(registry, { name: 'kes_outbox_relay_owned_lanes', help: 'Lanes this relay publishes' }),
    retentionDeleted: counter(registry, { name: 'kes_outbox_retention_deleted_total', help: 'Dispatched rows deleted by retention' }),
  };
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>;
