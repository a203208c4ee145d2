// Shared by the relay's integration tests: write events, run relays, read the topic back.
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { writeOutboxEvent } from '@kvary/outbox/writer';
import { createLogger } from '@kvary/platform/logging';
import { createMetricsRegistry, type Registry } from '@kvary/platform/metrics';
import { withTransaction, type Pool } from '@kvary/platform/postgres';
import { collectMessages, type CollectedMessage } from '@kvary/testing/kafka';
import { parseRelayConfig, type RelayConfig } from '../src/config.js';
import { createRelayMetrics } from '../src/metrics.js';
import { OutboxRelay } from '../src/relay.js';
import { waitUntil } from '@kvary/testing/wait';
export { waitUntil };

export const silentLogger = createLogger({ name: 'relay-test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false });

export function testRelayConfig(databaseUrl: string, brokers: string[], overrides: Record<string, string> = {}): RelayConfig {
  return parseRelayConfig({
    DATABASE_URL: databaseUrl,
    KAFKA_BROKERS: brokers.join(','),
    KES_ENV: 'test',
    KES_RELAY_POLL_INTERVAL_MS: '200',
    KES_RELAY_REBALANCE_INTERVAL_MS: '300',
    KES_RELAY_STATS_INTERVAL_MS: '200',
    KES_RELAY_BACKOFF_BASE_MS: '50',
    KES_RELAY_BACKOFF_MAX_MS: '500',
    KES_RELAY_RETENTION_INTERVAL_MS: '3600000',
    ...overrides,
  });
}

export interface RunningRelay {
  relay: OutboxRelay;
  registry: Registry;
  stop: () => Promise<void>;
}

export async function startRelay(pool: Pool, kafka: Kafka, config: RelayConfig): Promise<RunningRelay> {
  const registry = createMetricsRegistry({ service: 'kes-outbox-relay' });
  const metrics = createRelayMetrics(registry);
  const relay = new OutboxRelay({ pool, kafka, logger: silentLogger, metrics, config });
  await relay.start();
  return { relay, registry, stop: async () => void (await relay.stop(5000)) };
}

export interface WrittenRow {
  eventId: string;
  aggregateId: string;
}

/** Commits one event (one transaction) for the aggregate. */
export async function writeEvent(
  pool: Pool,
  topic: string,
  aggregateId: string,
  payload: unknown = { at: Date.now() },
  options: { notify?: boolean; eventType?: string } = {},
): Promise<WrittenRow> {
  return withTransaction(pool, async (client) => {
    const written = await writeOutboxEvent(
      client,
      {
        aggregateType: 'tender',
        aggregateId,
        eventType: options.eventType ?? 'kvary.tenders.tender.updated',
        eventVersion: 1,
        topic,
        source: '/kvary/svc-tenders',
        payload,
        headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
      },
      { notify: options.notify ?? true },
    );
    return { eventId: written.eventId, aggregateId };
  });
}

/** Writes `count` events round-robin over `aggregates` ids, `concurrency` writers at once. */
export async function writeMany(pool: Pool, topic: string, count: number, aggregates: string[], concurrency = 8): Promise<void> {
  let next = 0;
  // Each writer takes the next sequence number; per-aggregate order is whatever commit order
  // results, and the test compares Kafka against the table's id order, not this loop's.
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      await writeEvent(pool, topic, aggregates[i % aggregates.length]!, { i, pad: 'x'.repeat(200) }, { notify: i % 50 === 0 });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

export function aggregateIds(n: number): string[] {
  return Array.from({ length: n }, () => randomUUID());
}


export async function countByStatus(pool: Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM kes_outbox_events GROUP BY status');
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

export async function readTopic(kafka: Kafka, topic: string, expectedDistinct: number, timeoutMs = 60000): Promise<CollectedMessage[]> {
  return collectMessages(kafka, topic, (messages) => new Set(messages.map((m) => m.headers.ce_id)).size >= expectedDistinct, timeoutMs);
}

/**
 * Checks per-aggregate order: for every aggregate, the first occurrence of each event in
 * Kafka (partition order) follows the table's id order. Returns problems (empty = ordered).
 */
export async function orderProblems(pool: Pool, messages: CollectedMessage[]): Promise<string[]> {
  const { rows } = await pool.query<{ aggregate_id: string; event_id: string }>(
    'SELECT aggregate_id, event_id FROM kes_outbox_events ORDER BY id',
  );
  const expected = new Map<string, string[]>();
  for (const r of rows) expected.set(r.aggregate_id, [...(expected.get(r.aggregate_id) ?? []), r.event_id]);
  const byPartition = new Map<number, CollectedMessage[]>();
  for (const m of messages) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m]);
  const seen = new Map<string, string[]>();
  const firstSeen = new Set<string>();
  for (const list of byPartition.values()) {
    list.sort((a, b) => (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
    for (const m of list) {
      const id = m.headers.ce_id!;
      if (firstSeen.has(id)) continue;
      firstSeen.add(id);
      seen.set(m.key!, [...(seen.get(m.key!) ?? []), id]);
    }
  }
  const problems: string[] = [];
  for (const [aggregate, ids] of expected) {
    const got = seen.get(aggregate) ?? [];
    if (got.join() !== ids.join()) problems.push(`aggregate ${aggregate}: expected ${ids.length} in table order, got ${got.length} differently ordered`);
  }
  return problems;
}
