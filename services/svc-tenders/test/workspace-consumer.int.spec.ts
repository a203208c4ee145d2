// The workspace consumer against real Postgres and Kafka: exactly-once effects, the DLQ with all
// headers, in-process retries, metrics, and GET /api/v1/workspace fed by the real relay.
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectMessages, testBrokers, testKafka } from '@kvary/testing/kafka';
import { startRelay, testRelayConfig } from '../../kes-outbox-relay/test/helpers.js';
import { DLQ_HEADERS } from '../src/workspace/consumer.js';
import { bearer, draftBody, expectStatus, startHarness, type Harness } from './harness.js';
import { freshTopics, metricValue, produce, startConsumer, tenderLifecycle, waitUntil, type RunningConsumer } from './workspace-helpers.js';

let h: Harness;
let kafka: Kafka;
const running: RunningConsumer[] = [];

beforeAll(async () => {
  h = await startHarness('wsconsumer');
  kafka = testKafka('ws-consumer-test');
});
afterAll(async () => {
  for (const c of running) await c.stop();
  await h.close();
});

async function consumer(topics: { topic: string; dlq: string }, options: Parameters<typeof startConsumer>[3] = {}) {
  const c = await startConsumer(h.db.pool, kafka, topics, options);
  running.push(c);
  return c;
}

async function inboxCount(group: string): Promise<number> {
  const { rows } = await h.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM kes_consumer_inbox WHERE consumer_group = $1', [group]);
  return rows[0]!.n;
}

async function tenderRow(tenderId: string) {
  const { rows } = await h.db.pool.query('SELECT status, title, tender_version FROM workspace_tenders WHERE tender_id = $1', [tenderId]);
  return rows[0];
}

async function activityCount(tenderId: string): Promise<number> {
  const { rows } = await h.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM workspace_activity WHERE tender_id = $1', [tenderId]);
  return rows[0]!.n;
}

describe('exactly-once effects', () => {
  it('applies an event delivered twice only once (inbox), also across a consumer restart', async () => {
    const topics = await freshTopics(kafka, 'dup');
    const t = tenderLifecycle({ org: 'org-dup' });
    const created = t.created();
    await produce(kafka, topics.topic, [created, created]);
    const c = await consumer(topics);
    await waitUntil(async () => (await metricValue(c.registry, 'kes_consumer_processed_total')) === 2, 20000, 'two deliveries handled');
    expect(await metricValue(c.registry, 'kes_consumer_processed_total', { result: 'applied' })).toBe(1);
    expect(await metricValue(c.registry, 'kes_consumer_processed_total', { result: 'duplicate' })).toBe(1);
    expect(await inboxCount(c.group)).toBe(1);
    expect(await activityCount(t.tenderId)).toBe(1);

    // Redelivery after a restart (a relay resend, say): still one effect; the committed offset is respected.
    await c.stop();
    await produce(kafka, topics.topic, [created]);
    const again = await consumer(topics, { group: c.group });
    await waitUntil(async () => (await metricValue(again.registry, 'kes_consumer_processed_total')) === 1, 20000, 'the resend');
    expect(await metricValue(again.registry, 'kes_consumer_processed_total', { result: 'duplicate' })).toBe(1);
    expect(await activityCount(t.tenderId)).toBe(1);
    expect(await tenderRow(t.tenderId)).toMatchObject({ status: 'draft', title: 'Road repair', tender_version: 1 });
  });
});

describe('dead-letter topic', () => {
  it('sends invalid messages to the DLQ with key, value, original and kes-dlq-* headers; later messages still flow', async () => {
    const topics = await freshTopics(kafka, 'dlq');
    const t = tenderLifecycle({ org: 'org-dlq' });
    const unknown = { eventId: randomUUID(), ceType: 'kvary.tenders.tender.created.v9', key: t.tenderId, payload: { x: 1 } };
    const invalid = { ...t.created(), payload: { tenderId: t.tenderId, title: '' } };
    const good = t.created();
    // Same key: same partition, so "later" is well defined.
    await produce(kafka, topics.topic, [unknown, invalid, good]);
    const c = await consumer(topics);
    await waitUntil(async () => (await tenderRow(t.tenderId)) !== undefined, 20000, 'the valid event after the invalid ones');
    expect(await metricValue(c.registry, 'kes_consumer_dlq_total', { reason: 'unknown_event_type' })).toBe(1);
    expect(await metricValue(c.registry, 'kes_consumer_dlq_total', { reason: 'contract_violation' })).toBe(1);

    const dead = await collectMessages(kafka, topics.dlq, (m) => m.length >= 2, 20000);
    expect(dead).toHaveLength(2);
    const byId = new Map(dead.map((m) => [m.headers.ce_id, m]));
    const u = byId.get(unknown.eventId)!;
    expect(u.key).toBe(t.tenderId);
    expect(JSON.parse(u.value!)).toEqual({ x: 1 });
    expect(u.headers).toMatchObject({
      ce_specversion: '1.0',
      ce_id: unknown.eventId,
      ce_type: 'kvary.tenders.tender.created.v9',
      ce_source: '/kvary/svc-tenders',
      ce_subject: t.tenderId,
      'content-type': 'application/json',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'kes-outbox-id': '1',
      [DLQ_HEADERS.originalTopic]: topics.topic,
      [DLQ_HEADERS.reason]: 'unknown_event_type',
      [DLQ_HEADERS.errorClass]: 'UnknownEventTypeError',
      [DLQ_HEADERS.attempts]: '1',
      [DLQ_HEADERS.consumerGroup]: c.group,
    });
    for (const name of Object.values(DLQ_HEADERS)) expect(u.headers[name], name).toBeTruthy();
    expect(u.headers.ce_time).toBeTruthy();
    expect(Number.isNaN(Date.parse(u.headers[DLQ_HEADERS.failedAt]!))).toBe(false);
    expect(u.headers[DLQ_HEADERS.errorMessage]).toContain('kvary.tenders.tender.created.v9');
    const v = byId.get(invalid.eventId)!;
    expect(v.headers).toMatchObject({ [DLQ_HEADERS.reason]: 'contract_violation', [DLQ_HEADERS.errorClass]: 'ContractViolationError' });
    // Original partition and offset point at the message in the source topic.
    expect(Number(v.headers[DLQ_HEADERS.originalOffset])).toBe(Number(u.headers[DLQ_HEADERS.originalOffset]) + 1);
    expect(v.headers[DLQ_HEADERS.originalPartition]).toBe(u.headers[DLQ_HEADERS.originalPartition]);

    // Committed past all three.
    await waitUntil(async () => (await metricValue(c.registry, 'kes_consumer_lag')) === 0 && c.consumer.status().lag === 0, 10000, 'lag 0');
  });

  it('retries a transient failure in-process without dead-lettering; exhausted retries go to the DLQ', async () => {
    const topics = await freshTopics(kafka, 'retry');
    const flaky = tenderLifecycle({ org: 'org-retry' });
    const broken = tenderLifecycle({ org: 'org-retry' });
    const flakyEvent = flaky.created();
    const brokenEvent = broken.created();
    let flakyFailures = 0;
    const c = await consumer(topics, { maxRetries: 3, retryBaseMs: 20 });
    c.faults.beforeApply = (event) => {
      if (event.eventId === flakyEvent.eventId && flakyFailures < 2) {
        flakyFailures++;
        throw new Error('database hiccup');
      }
      if (event.eventId === brokenEvent.eventId) throw new Error('projection is broken for this one');
    };
    await produce(kafka, topics.topic, [flakyEvent, brokenEvent]);
    await waitUntil(async () => (await metricValue(c.registry, 'kes_consumer_dlq_total')) === 1, 20000, 'the broken one dead-lettered');
    // The two tenders may sit on different partitions: wait for the flaky one on its own.
    await waitUntil(async () => (await tenderRow(flaky.tenderId)) !== undefined, 20000, 'the flaky one applied');
    expect(flakyFailures).toBe(2);
    expect(await tenderRow(flaky.tenderId)).toMatchObject({ status: 'draft' });
    expect(await tenderRow(broken.tenderId)).toBeUndefined();
    expect(await metricValue(c.registry, 'kes_consumer_retries_total')).toBe(2 + 3);
    const dead = await collectMessages(kafka, topics.dlq, (m) => m.length >= 1, 10000);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.headers).toMatchObject({
      ce_id: brokenEvent.eventId,
      [DLQ_HEADERS.reason]: 'retries_exhausted',
      [DLQ_HEADERS.attempts]: '4',
      [DLQ_HEADERS.errorClass]: 'Error',
      [DLQ_HEADERS.errorMessage]: 'projection is broken for this one',
    });
    // The failed transaction left nothing behind, so a replay can apply it later.
    expect(await inboxCount(c.group)).toBe(1);
  });
});

describe('projection and GET /api/v1/workspace', () => {
  it('counts tenders by status per organisation and user, with recent activity, through the real relay', async () => {
    const topics = await freshTopics(kafka, 'api');
    const officer = await h.token('PROCUREMENT_OFFICER', 'ws-buyer', 'ws-officer');
    const supplier = await h.token('SUPPLIER', 'ws-supplier', 'ws-supplier-user');
    const post = (url: string, token: string, payload: unknown = {}) => h.app.inject({ method: 'POST', url, headers: bearer(token), payload: payload as object });
    const a = expectStatus(await post('/api/v1/tenders', officer, draftBody({ title: 'Tender A' })), 201).id as string;
    const b = expectStatus(await post('/api/v1/tenders', officer, draftBody({ title: 'Tender B' })), 201).id as string;
    expectStatus(await post('/api/v1/tenders', officer, draftBody({ title: 'Tender C' })), 201);
    expectStatus(await post(`/api/v1/tenders/${a}/publish`, officer), 200);
    expectStatus(await post(`/api/v1/tenders/${b}/publish`, officer), 200);
    expectStatus(await post(`/api/v1/tenders/${a}/bids`, supplier, { amount: { amount: '900.00', currency: 'GEL' } }), 201);
    // The service writes kes.tenders.v1; tests never publish there.
    await h.db.pool.query('UPDATE kes_outbox_events SET topic = $1 WHERE status = $2', [topics.topic, 'pending']);
    const outboxCount = (await h.db.pool.query('SELECT 1 FROM kes_outbox_events WHERE topic = $1', [topics.topic])).rowCount!;

    const relay = await startRelay(h.db.pool, kafka, testRelayConfig(h.db.url, testBrokers()));
    const c = await consumer(topics);
    try {
      await waitUntil(
        async () => (await metricValue(c.registry, 'kes_consumer_processed_total', { result: 'applied' })) === outboxCount,
        30000,
        'every outbox event applied',
      );
    } finally {
      await relay.stop();
    }

    const res = await h.app.inject({ method: 'GET', url: '/api/v1/workspace', headers: bearer(officer) });
    const body = expectStatus(res, 200);
    expect(body).toMatchObject({
      orgId: 'ws-buyer',
      userId: 'ws-officer',
      tendersByStatus: { draft: 1, published: 2, closed: 0, awarded: 0, cancelled: 0 },
      user: { tendersByStatus: { draft: 1, published: 2, closed: 0, awarded: 0, cancelled: 0 } },
    });
    const activity = body.recentActivity as { type: string; title: string; summary: string; actorId: string | null }[];
    expect(activity).toHaveLength(6);
    // Newest first; the buyer sees that a sealed bid arrived, not who bid or how much.
    expect(activity[0]).toMatchObject({ type: 'kvary.tenders.tender.bid-submitted.v1', title: 'Tender A', actorId: null });
    expect(activity[0]!.summary).not.toContain('900');
    expect(typeof body.asOf).toBe('string');

    const supplierView = expectStatus(await h.app.inject({ method: 'GET', url: '/api/v1/workspace', headers: bearer(supplier) }), 200);
    expect(supplierView).toMatchObject({
      orgId: 'ws-supplier',
      tendersByStatus: { published: 1, draft: 0 },
      recentActivity: [{ type: 'kvary.tenders.tender.bid-submitted.v1', actorId: 'ws-supplier-user', summary: 'Bid submitted: 900.00 GEL' }],
    });

    expect((await h.app.inject({ method: 'GET', url: '/api/v1/workspace' })).statusCode).toBe(401);
  });

  it('never moves a tender back to an older status (a late replayed event)', async () => {
    const topics = await freshTopics(kafka, 'order');
    const t = tenderLifecycle({ org: 'org-order' });
    const c = await consumer(topics);
    await produce(kafka, topics.topic, [t.created(), t.published(2), t.closed(3)]);
    await waitUntil(async () => (await tenderRow(t.tenderId))?.status === 'closed', 20000, 'closed');
    // A bid event (version 2) replayed from the DLQ after the close.
    await produce(kafka, topics.topic, [t.bid(2)]);
    await waitUntil(async () => (await metricValue(c.registry, 'kes_consumer_processed_total')) === 4, 20000, 'the late bid');
    expect(await tenderRow(t.tenderId)).toMatchObject({ status: 'closed', tender_version: 3 });
    const { rows } = await h.db.pool.query('SELECT org_id, role FROM workspace_tender_orgs WHERE tender_id = $1 ORDER BY role', [t.tenderId]);
    expect(rows).toEqual([
      { org_id: 'org-order', role: 'buyer' },
      { org_id: 'supplier-org', role: 'supplier' },
    ]);
  });
});

describe('health and metrics', () => {
  it('reports consumer state and lag in /health and the consumer metrics on /metrics', async () => {
    const topics = await freshTopics(kafka, 'health');
    const c = await consumer(topics);
    await produce(kafka, topics.topic, [tenderLifecycle({ org: 'org-health' }).created()]);
    await waitUntil(async () => (await metricValue(c.registry, 'kes_consumer_processed_total')) === 1, 20000, 'one event');
    await waitUntil(async () => c.consumer.status().lag === 0, 10000, 'lag measured');
    expect(c.consumer.status()).toMatchObject({ state: 'running', topic: topics.topic, group: c.group, lag: 0 });
    h.health.consumer = () => c.consumer.status();
    const healthy = await h.app.inject({ method: 'GET', url: '/health' });
    expect(healthy.json()).toMatchObject({ ok: true, consumer: { state: 'running', lag: 0, group: c.group } });
    const text = await c.registry.metrics();
    expect(text).toMatch(/kes_consumer_processed_total\{result="applied",service="svc-tenders-test"\} 1/);
    expect(text).toMatch(/kes_consumer_lag\{partition="\d",service="svc-tenders-test"\} 0/);
    await c.stop();
    expect(c.consumer.status().state).toBe('stopped');
    await c.stop(); // twice is fine

    const health = await h.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toMatchObject({ ok: true, consumer: { state: 'stopped' } });
    const metrics = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/kes_replays_recorded\{tool="replay:kes-dlq",service="svc-tenders-test"\} 0/);
    expect(metrics.body).toMatch(/kes_replay_outbox_poison_total\{mode="execute",service="svc-tenders-test"\} 0/);
  });
});
