// The dashboard shows data: a real relay and a real workspace consumer run with events flowing
// (plus one poison row and one DLQ message), a real Prometheus (Debian's binary) scrapes them,
// and every panel query of "KES Outbox Overview" is run through Prometheus' HTTP API.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kafka } from 'kafkajs';
import { createHttpApp, type HttpApp } from '@kvary/platform/http';
import { createTestDatabase, type TestDatabase } from '@kvary/testing/postgres';
import { testBrokers, testKafka, uniqueTopic } from '@kvary/testing/kafka';
import { buildApp as buildRelayApp } from '../../services/kes-outbox-relay/src/app.js';
import { silentLogger, startRelay, testRelayConfig, waitUntil, writeEvent, type RunningRelay } from '../../services/kes-outbox-relay/test/helpers.js';
import { freshTopics, startConsumer, tenderLifecycle, type RunningConsumer } from '../../services/svc-tenders/test/workspace-helpers.js';
import { panels } from './dashboard.js';
import { freePort } from '@kvary/testing/wait';

let db: TestDatabase;
let kafka: Kafka;
let relay: RunningRelay;
let consumer: RunningConsumer;
const apps: HttpApp[] = [];
let prometheus: ChildProcess | undefined;
let promUrl = '';
let workDir = '';


async function query(expr: string): Promise<{ status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } }> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as never;
}

beforeAll(async () => {
  db = await createTestDatabase('dashboard');
  kafka = testKafka('dashboard-test');
  const topics = await freshTopics(kafka, 'dashboard');

  relay = await startRelay(db.pool, kafka, testRelayConfig(db.url, testBrokers(), { KES_RELAY_MAX_ATTEMPTS: '2', KES_RELAY_STATS_INTERVAL_MS: '500' }));
  const relayApp = buildRelayApp({ relay: relay.relay, logger: silentLogger, registry: relay.registry });
  consumer = await startConsumer(db.pool, kafka, topics, { maxRetries: 1 });
  const consumerApp = createHttpApp({ service: 'svc-tenders', logger: silentLogger, metrics: consumer.registry });
  apps.push(relayApp, consumerApp);
  const relayPort = await freePort();
  const consumerPort = await freePort();
  await relayApp.listen({ port: relayPort, host: '127.0.0.1' });
  await consumerApp.listen({ port: consumerPort, host: '127.0.0.1' });

  // Events flowing: valid tender events through the outbox and relay to the consumer ...
  for (let i = 0; i < 20; i++) {
    const t = tenderLifecycle();
    await writeEvent(db.pool, topics.topic, t.tenderId, t.created().payload, { eventType: 'kvary.tenders.tender.created' });
  }
  // ... one message the consumer cannot accept (it goes to the DLQ) ...
  await writeEvent(db.pool, topics.topic, 'bad-aggregate', { not: 'a tender event' }, { eventType: 'kvary.tenders.tender.created' });
  // ... and one outbox row for a topic that does not exist (poison after 2 attempts).
  await writeEvent(db.pool, uniqueTopic('dashboard.missing'), 'poison-aggregate', { n: 1 });

  workDir = mkdtempSync(path.join(tmpdir(), 'kes-prom-'));
  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  writeFileSync(
    path.join(workDir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      `  - { job_name: kes-outbox-relay, static_configs: [{ targets: ['127.0.0.1:${relayPort}'] }] }`,
      `  - { job_name: svc-tenders, static_configs: [{ targets: ['127.0.0.1:${consumerPort}'] }] }`,
      '',
    ].join('\n'),
  );
  prometheus = spawn(
    'prometheus',
    [`--config.file=${path.join(workDir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(workDir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
    { stdio: 'ignore' },
  );
  prometheus.on('error', (error) => {
    throw new Error(`cannot start prometheus (apt-get install prometheus): ${error.message}`);
  });
  await waitUntil(async () => (await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.ok === true, 30000, 'prometheus ready');
  await waitUntil(async () => {
    const { rows } = await db.pool.query(`SELECT count(*) FILTER (WHERE status = 'poison')::int AS poison, count(*) FILTER (WHERE status = 'dispatched')::int AS dispatched FROM kes_outbox_events`);
    return rows[0].poison === 1 && rows[0].dispatched === 21;
  }, 30000, 'events dispatched and one poison row');
  // Rates need at least two samples of the counters after the events: wait for several scrapes.
  await waitUntil(async () => (await query('kes_consumer_dlq_total')).data.result.length > 0, 30000, 'the DLQ counter scraped');
  await new Promise((r) => setTimeout(r, 4000));
}, 120_000);

afterAll(async () => {
  prometheus?.kill('SIGTERM');
  for (const app of apps) await app.close();
  await consumer?.stop();
  await relay?.stop();
  await db?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('KES Outbox Overview shows data from the real Prometheus', () => {
  it('kes_outbox_relay_up is 1, as the runbook expects', async () => {
    const result = await query('kes_outbox_relay_up');
    expect(result.status).toBe('success');
    expect(result.data.result.map((r) => r.value[1])).toEqual(['1']);
  });

  const targets = panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, legend: t.legend, expr: t.expr })));
  it.each(targets)('$panel ($legend): $expr', async ({ expr }) => {
    const result = await query(expr);
    expect(result.status).toBe('success');
    expect(result.data.result.length, `no data for ${expr}`).toBeGreaterThan(0);
  });

  it('shows the poison row and the DLQ message', async () => {
    expect((await query('max(kes_outbox_poison_events)')).data.result[0]?.value[1]).toBe('1');
    expect(Number((await query('sum(kes_consumer_dlq_total)')).data.result[0]?.value[1])).toBeGreaterThanOrEqual(1);
  });
});
