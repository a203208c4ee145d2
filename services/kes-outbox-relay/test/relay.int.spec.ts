// The outbox guarantees of system.md, each shown against real Postgres and a real broker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kafka } from 'kafkajs';
import { writeOutboxEvent } from '@kvary/outbox/writer';
import { withTransaction } from '@kvary/platform/postgres';
import { createTestDatabase, type TestDatabase } from '@kvary/testing/postgres';
import { createTopics, collectMessages, testBrokers, testKafka, uniqueTopic } from '@kvary/testing/kafka';
import { buildApp } from '../src/app.js';
import {
  aggregateIds,
  countByStatus,
  orderProblems,
  readTopic,
  startRelay,
  testRelayConfig,
  waitUntil,
  writeEvent,
  writeMany,
} from './helpers.js';

let db: TestDatabase;
let kafka: Kafka;

beforeAll(async () => {
  db = await createTestDatabase('relay');
  kafka = testKafka('relay-test');
});
afterAll(async () => db.close());

async function freshTopic(prefix: string, partitions = 3): Promise<string> {
  const topic = uniqueTopic(`relay.${prefix}`);
  await createTopics(kafka, [{ topic, numPartitions: partitions }]);
  return topic;
}

async function resetOutbox() {
  await db.pool.query('TRUNCATE kes_outbox_events, kes_outbox_replays');
}

describe('atomicity', () => {
  it('a rolled-back transaction leaves no row and no message; a committed one is published with CloudEvents headers', async () => {
    await resetOutbox();
    const topic = await freshTopic('atomic', 1);
    await expect(
      withTransaction(db.pool, async (client) => {
        await writeOutboxEvent(client, {
          aggregateType: 'tender',
          aggregateId: 'rolled-back',
          eventType: 'kvary.tenders.tender.created',
          eventVersion: 1,
          topic,
          source: '/kvary/svc-tenders',
          payload: { n: 1 },
        });
        throw new Error('domain write failed');
      }),
    ).rejects.toThrow('domain write failed');
    expect((await db.pool.query('SELECT 1 FROM kes_outbox_events')).rowCount).toBe(0);

    const committed = await writeEvent(db.pool, topic, 'committed-aggregate', { hello: 'world' }, { eventType: 'kvary.tenders.tender.created' });
    const relay = await startRelay(db.pool, kafka, testRelayConfig(db.url, testBrokers()));
    try {
      await waitUntil(async () => (await countByStatus(db.pool)).dispatched === 1, 15000, 'dispatch');
      const messages = await collectMessages(kafka, topic, (m) => m.length >= 1, 15000);
      // Give a would-be second message a moment to show up, then assert exactly one.
      await new Promise((r) => setTimeout(r, 300));
      const again = await collectMessages(kafka, topic, (m) => m.length >= 1, 5000);
      expect(again).toHaveLength(1);
      const [message] = messages;
      expect(message?.key).toBe('committed-aggregate');
      expect(JSON.parse(message!.value!)).toEqual({ hello: 'world' });
      expect(message?.headers).toMatchObject({
        ce_specversion: '1.0',
        ce_id: committed.eventId,
        ce_type: 'kvary.tenders.tender.created.v1',
        ce_source: '/kvary/svc-tenders',
        ce_subject: 'committed-aggregate',
        'content-type': 'application/json',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      });
      expect(Date.parse(message!.headers.ce_time!)).not.toBeNaN();
      const { rows } = await db.pool.query('SELECT id, kafka_partition, kafka_offset, dispatched_at, attempts FROM kes_outbox_events');
      expect(message?.headers['kes-outbox-id']).toBe(String(rows[0].id));
      expect(rows[0]).toMatchObject({ kafka_partition: message!.partition, kafka_offset: message!.offset, attempts: 1 });
    } finally {
      await relay.stop();
    }
  });

  it('the writer refuses a client that is not inside withTransaction', async () => {
    const client = await db.pool.connect();
    try {
      await expect(
        writeOutboxEvent(client, {
          aggregateType: 'tender',
          aggregateId: 'x',
          eventType: 'kvary.tenders.tender.created',
          eventVersion: 1,
          topic: 't',
          source: 's',
          payload: {},
        }),
      ).rejects.toThrow(/open transaction/);
    } finally {
      client.release();
    }
  });
});

describe('ordering', () => {
  it('two relays at once over 2,000 events on 50 aggregates: every event arrives, per-aggregate order intact', async () => {
    await resetOutbox();
    const topic = await freshTopic('two-relays');
    const aggregates = aggregateIds(50);
    const config = testRelayConfig(db.url, testBrokers(), { KES_RELAY_BATCH_SIZE: '100' });
    const a = await startRelay(db.pool, kafka, config);
    const b = await startRelay(db.pool, kafka, config);
    try {
      await writeMany(db.pool, topic, 2000, aggregates, 8);
      await waitUntil(async () => (await countByStatus(db.pool)).dispatched === 2000, 60000, '2000 dispatched');
      // Both relays really shared the work.
      expect(a.relay.stats.dispatched).toBeGreaterThan(0);
      expect(b.relay.stats.dispatched).toBeGreaterThan(0);
      const messages = await readTopic(kafka, topic, 2000);
      const distinct = new Set(messages.map((m) => m.headers.ce_id));
      expect(distinct.size).toBe(2000);
      expect(await orderProblems(db.pool, messages)).toEqual([]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('a late commit (id allocated first, committed last) is not skipped', async () => {
    await resetOutbox();
    const topic = await freshTopic('late', 1);
    const relay = await startRelay(db.pool, kafka, testRelayConfig(db.url, testBrokers()));
    try {
      let releaseA!: () => void;
      const aMayCommit = new Promise<void>((r) => (releaseA = r));
      let aInserted!: () => void;
      const aHasId = new Promise<void>((r) => (aInserted = r));
      let aId = '';
      const txA = withTransaction(db.pool, async (client) => {
        const w = await writeOutboxEvent(client, {
          aggregateType: 'tender',
          aggregateId: 'agg-A',
          eventType: 'kvary.tenders.tender.updated',
          eventVersion: 1,
          topic,
          source: '/kvary/svc-tenders',
          payload: { tx: 'A' },
        });
        aId = w.id;
        aInserted();
        await aMayCommit;
      });
      await aHasId;
      const b = await writeEvent(db.pool, topic, 'agg-B', { tx: 'B' });
      const bRow = await db.pool.query('SELECT id FROM kes_outbox_events WHERE event_id = $1', [b.eventId]);
      expect(BigInt(bRow.rows[0].id)).toBeGreaterThan(BigInt(aId));
      await waitUntil(async () => (await countByStatus(db.pool)).dispatched === 1, 10000, 'B dispatched');
      releaseA();
      await txA;
      await waitUntil(async () => (await countByStatus(db.pool)).dispatched === 2, 10000, 'A dispatched after its late commit');
      const messages = await readTopic(kafka, topic, 2);
      expect(messages.map((m) => JSON.parse(m.value!).tx)).toEqual(['B', 'A']);
    } finally {
      await relay.stop();
    }
  });

  it('a second writer of the same aggregate waits for the first to commit, so id order is commit order', async () => {
    await resetOutbox();
    const topic = await freshTopic('same-agg', 1);
    let releaseFirst!: () => void;
    const firstMayCommit = new Promise<void>((r) => (releaseFirst = r));
    let firstInserted!: () => void;
    const firstHasRow = new Promise<void>((r) => (firstInserted = r));
    const first = withTransaction(db.pool, async (client) => {
      await writeOutboxEvent(client, {
        aggregateType: 'tender',
        aggregateId: 'agg-same',
        eventType: 'kvary.tenders.tender.updated',
        eventVersion: 1,
        topic,
        source: 's',
        payload: { n: 1 },
      });
      firstInserted();
      await firstMayCommit;
    });
    await firstHasRow;
    let secondDone = false;
    const second = writeEvent(db.pool, topic, 'agg-same', { n: 2 }).then(() => (secondDone = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(secondDone).toBe(false); // blocked on the aggregate lock
    releaseFirst();
    await first;
    await second;
    const { rows } = await db.pool.query(`SELECT payload->>'n' AS n FROM kes_outbox_events ORDER BY id`);
    expect(rows.map((r) => r.n)).toEqual(['1', '2']);
  });
});

describe('poison isolation', () => {
  it('retries with backoff, poisons after the configured attempts, blocks only its aggregate, shows it in metrics', async () => {
    await resetOutbox();
    const topic = await freshTopic('poison');
    const missingTopic = uniqueTopic('relay.does-not-exist');
    const config = testRelayConfig(db.url, testBrokers(), { KES_RELAY_MAX_ATTEMPTS: '3', KES_RELAY_POLL_INTERVAL_MS: '100' });
    // The bad aggregate: its first event goes to a topic that does not exist (auto-create is off).
    await writeEvent(db.pool, missingTopic, 'agg-bad', { n: 1 });
    await writeEvent(db.pool, topic, 'agg-bad', { n: 2 });
    await writeEvent(db.pool, topic, 'agg-bad', { n: 3 });
    const good = aggregateIds(5);
    for (const g of good) await writeEvent(db.pool, topic, g, { ok: true });
    const relay = await startRelay(db.pool, kafka, config);
    try {
      await waitUntil(async () => (await countByStatus(db.pool)).poison === 1, 20000, 'poison');
      await waitUntil(async () => (await countByStatus(db.pool)).dispatched === 5, 10000, 'other aggregates dispatched');
      const { rows } = await db.pool.query(`SELECT aggregate_id, status, attempts, last_error FROM kes_outbox_events WHERE aggregate_id = 'agg-bad' ORDER BY id`);
      expect(rows[0]).toMatchObject({ status: 'poison', attempts: 3 });
      expect(rows[0].last_error).toMatch(/unknown_topic/);
      // Later events of the poisoned aggregate wait, untouched.
      expect(rows.slice(1).map((r) => [r.status, r.attempts])).toEqual([
        ['pending', 0],
        ['pending', 0],
      ]);
      await relay.relay.refreshStats();
      const metrics = await relay.registry.getMetricsAsJSON();
      const value = (name: string) => metrics.find((m) => m.name === name)?.values[0]?.value;
      expect(value('kes_outbox_poison_events')).toBe(1);
      expect(value('kes_outbox_blocked_events')).toBe(2);
      expect(value('kes_outbox_blocked_aggregates')).toBe(1);
      const failures = metrics.find((m) => m.name === 'kes_outbox_publish_failures_total')?.values ?? [];
      expect(failures.find((v) => v.labels.reason === 'unknown_topic')?.value).toBeGreaterThanOrEqual(1);

      // Repair (what replay:kes-outbox-poison does): the aggregate flows again, in order.
      await createTopics(kafka, [{ topic: missingTopic, numPartitions: 1 }]);
      await db.pool.query(`UPDATE kes_outbox_events SET status = 'pending', attempts = 0, next_attempt_at = now() WHERE status = 'poison'`);
      await waitUntil(async () => (await countByStatus(db.pool)).dispatched === 8, 15000, 'blocked aggregate drained');
      const later = await readTopic(kafka, topic, 7);
      expect(later.filter((m) => m.key === 'agg-bad').map((m) => JSON.parse(m.value!).n)).toEqual([2, 3]);
    } finally {
      await relay.stop();
    }
  });

  it('a record too large is poisoned at once without stalling the rest of its batch', async () => {
    await resetOutbox();
    const topic = await freshTopic('too-large');
    await writeEvent(db.pool, topic, 'agg-huge', { blob: 'x'.repeat(20000) });
    await writeEvent(db.pool, topic, 'agg-huge', { after: true });
    const others = aggregateIds(10);
    for (const o of others) await writeEvent(db.pool, topic, o, { small: true });
    const relay = await startRelay(db.pool, kafka, testRelayConfig(db.url, testBrokers(), { KES_RELAY_MAX_MESSAGE_BYTES: '10000' }));
    try {
      await waitUntil(async () => {
        const c = await countByStatus(db.pool);
        return c.poison === 1 && c.dispatched === 10;
      }, 15000, 'poison + 10 dispatched');
      const { rows } = await db.pool.query(`SELECT status, attempts, last_error FROM kes_outbox_events WHERE aggregate_id = 'agg-huge' ORDER BY id`);
      expect(rows[0]).toMatchObject({ status: 'poison', attempts: 1 });
      expect(rows[0].last_error).toMatch(/record_too_large/);
      expect(rows[1].status).toBe('pending');
    } finally {
      await relay.stop();
    }
  });
});

describe('wake-up, retention, health and metrics', () => {
  it('wakes on NOTIFY long before the polling backstop', async () => {
    await resetOutbox();
    const topic = await freshTopic('notify', 1);
    const relay = await startRelay(db.pool, kafka, testRelayConfig(db.url, testBrokers(), { KES_RELAY_POLL_INTERVAL_MS: '30000' }));
    try {
      await new Promise((r) => setTimeout(r, 500)); // let the relay go idle
      const started = Date.now();
      await writeEvent(db.pool, topic, 'agg-notify', {}, { notify: true });
      await waitUntil(async () => (await countByStatus(db.pool)).dispatched === 1, 5000, 'notify wake-up');
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await relay.stop();
    }
  });

  it('deletes dispatched rows older than the retention age in bounded batches, keeping the rest', async () => {
    await resetOutbox();
    await db.pool.query(`
      INSERT INTO kes_outbox_events (event_id, aggregate_type, aggregate_id, event_type, event_version, topic, source, payload, status, dispatched_at)
      SELECT gen_random_uuid(), 'tender', 'r' || g, 'kvary.tenders.tender.created', 1, 't', 's', '{}',
             CASE WHEN g <= 250 THEN 'dispatched' WHEN g <= 260 THEN 'pending' ELSE 'dispatched' END,
             CASE WHEN g <= 250 THEN now() - interval '2 hours' WHEN g <= 260 THEN NULL ELSE now() END
      FROM generate_series(1, 300) g`);
    const relay = await startRelay(
      db.pool,
      kafka,
      testRelayConfig(db.url, testBrokers(), { KES_RELAY_RETENTION_SECONDS: '3600', KES_RELAY_RETENTION_BATCH: '100', KES_RELAY_LISTEN: 'false', KES_RELAY_POLL_INTERVAL_MS: '60000' }),
    );
    try {
      const deleted = await relay.relay.runRetention();
      expect(deleted).toBe(250);
      const c = await db.pool.query(`SELECT count(*)::int AS n FROM kes_outbox_events WHERE status = 'dispatched'`);
      expect(c.rows[0].n).toBe(40);
      const metrics = await relay.registry.getMetricsAsJSON();
      expect(metrics.find((m) => m.name === 'kes_outbox_retention_deleted_total')?.values[0]?.value).toBe(250);
    } finally {
      await relay.stop();
    }
  });

  it('serves /health and the system.md metrics on /metrics', async () => {
    await resetOutbox();
    const topic = await freshTopic('metrics', 1);
    for (let i = 0; i < 5; i++) await writeEvent(db.pool, topic, `agg-m${i}`, { i }, { eventType: 'kvary.tenders.tender.published' });
    const running = await startRelay(db.pool, kafka, testRelayConfig(db.url, testBrokers()));
    const app = buildApp({ relay: running.relay, logger: (await import('./helpers.js')).silentLogger, registry: running.registry });
    try {
      await waitUntil(async () => (await countByStatus(db.pool)).dispatched === 5, 15000, 'dispatch');
      await running.relay.refreshStats();
      const health = await app.inject({ method: 'GET', url: '/health' });
      expect(health.statusCode).toBe(200);
      expect(health.json()).toMatchObject({ ok: true, checks: { postgres: { ok: true }, kafka: { ok: true } } });
      const res = await app.inject({ method: 'GET', url: '/metrics' });
      const text = res.body;
      for (const name of [
        'kes_outbox_relay_up',
        'kes_outbox_pending_events',
        'kes_outbox_oldest_pending_age_seconds',
        'kes_outbox_poison_events',
        'kes_outbox_dispatched_total',
        'kes_outbox_publish_failures_total',
        'kes_outbox_dispatch_lag_seconds',
        'kes_outbox_batch_size',
        'kes_outbox_poll_duration_seconds',
      ]) {
        expect(text, name).toContain(`# TYPE ${name} `);
      }
      expect(text).toMatch(/^kes_outbox_relay_up\{service="kes-outbox-relay"\} 1$/m);
      expect(text).toMatch(/^kes_outbox_pending_events\{service="kes-outbox-relay"\} 0$/m);
      expect(text).toMatch(
        new RegExp(`^kes_outbox_dispatched_total\\{topic="${topic.replaceAll('.', '\\.')}",event_type="kvary\\.tenders\\.tender\\.published",service="kes-outbox-relay"\\} 5$`, 'm'),
      );
      expect(text).toMatch(/^kes_outbox_dispatch_lag_seconds_count\{service="kes-outbox-relay"\} 5$/m);
      expect(text).toContain('process_resident_memory_bytes');
    } finally {
      await app.close();
      await running.stop();
    }
  });

  it('answers 503 naming Kafka when the broker is unreachable', async () => {
    const { createKafka } = await import('@kvary/platform/kafka');
    const deadKafka = createKafka({ brokers: ['127.0.0.1:1'], clientId: 'dead', retries: 0, connectionTimeoutMs: 300 });
    const registry = (await import('@kvary/platform/metrics')).createMetricsRegistry();
    const { createRelayMetrics } = await import('../src/metrics.js');
    const { OutboxRelay } = await import('../src/relay.js');
    const { silentLogger } = await import('./helpers.js');
    const relay = new OutboxRelay({
      pool: db.pool,
      kafka: deadKafka,
      logger: silentLogger,
      metrics: createRelayMetrics(registry),
      config: testRelayConfig(db.url, ['127.0.0.1:1']),
    });
    const app = buildApp({ relay, logger: silentLogger, registry });
    const res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ ok: false, failing: ['kafka'], checks: { postgres: { ok: true }, kafka: { ok: false } } });
    await app.close();
  });
});
