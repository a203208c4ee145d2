// Shared by the workspace consumer and replay tool tests: a consumer on unique topics, CloudEvents
// messages produced like the relay does, event payloads, and the tools run as real processes.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Partitioners, type IHeaders, type Kafka } from 'kafkajs';
import { TENDERS_SOURCE } from '@kvary/contracts/tenders';
import { createLogger } from '@kvary/platform/logging';
import { createMetricsRegistry, type Registry } from '@kvary/platform/metrics';
import type { Pool } from '@kvary/platform/postgres';
import { createTopics, uniqueTopic } from '@kvary/testing/kafka';
import { WorkspaceConsumer } from '../src/workspace/consumer.js';
import { createConsumerMetrics } from '../src/workspace/metrics.js';
import type { IncomingEvent } from '../src/workspace/projector.js';
import { waitUntil } from '@kvary/testing/wait';
export { waitUntil };

export const SERVICE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(SERVICE_DIR, '../..');

export interface Topics {
  topic: string;
  dlq: string;
}

export async function freshTopics(kafka: Kafka, prefix: string): Promise<Topics> {
  const topics = { topic: uniqueTopic(`ws.${prefix}`), dlq: uniqueTopic(`ws.${prefix}.dlq`) };
  await createTopics(kafka, [
    { topic: topics.topic, numPartitions: 3 },
    { topic: topics.dlq, numPartitions: 3 },
  ]);
  return topics;
}

export interface RunningConsumer {
  consumer: WorkspaceConsumer;
  registry: Registry;
  group: string;
  faults: { beforeApply?: (event: IncomingEvent) => void | Promise<void> };
  stop: () => Promise<void>;
}

export async function startConsumer(
  pool: Pool,
  kafka: Kafka,
  topics: Topics,
  options: { group?: string; maxRetries?: number; retryBaseMs?: number } = {},
): Promise<RunningConsumer> {
  const registry = createMetricsRegistry({ service: 'svc-tenders-test' });
  const faults: RunningConsumer['faults'] = {};
  const group = options.group ?? `ws-test-${randomUUID().slice(0, 8)}`;
  const consumer = new WorkspaceConsumer({
    pool,
    kafka,
    logger: createLogger({ name: 'consumer-test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false }),
    metrics: createConsumerMetrics(registry),
    settings: {
      CONSUMER_TOPIC: topics.topic,
      CONSUMER_DLQ_TOPIC: topics.dlq,
      CONSUMER_GROUP: group,
      CONSUMER_MAX_RETRIES: options.maxRetries ?? 3,
      CONSUMER_RETRY_BASE_MS: options.retryBaseMs ?? 20,
      CONSUMER_RETRY_MAX_MS: 500,
      CONSUMER_LAG_INTERVAL_MS: 200,
    },
    beforeApply: (event) => faults.beforeApply?.(event),
  });
  await consumer.start();
  return { consumer, registry, group, faults, stop: () => consumer.stop() };
}

export interface TestEvent {
  eventId: string;
  ceType: string;
  key: string;
  payload: unknown;
  headers?: Record<string, string>;
}

/** Binary-mode CloudEvents headers, as kes-outbox-relay writes them. */
export function cloudEventHeaders(e: TestEvent): IHeaders {
  return {
    ce_specversion: '1.0',
    ce_id: e.eventId,
    ce_type: e.ceType,
    ce_source: TENDERS_SOURCE,
    ce_time: new Date().toISOString(),
    ce_subject: e.key,
    'content-type': 'application/json',
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    'kes-outbox-id': '1',
    ...(e.headers ?? {}),
  };
}

export async function produce(kafka: Kafka, topic: string, events: TestEvent[]): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: events.map((e) => ({ key: e.key, value: JSON.stringify(e.payload), headers: cloudEventHeaders(e) })),
    });
  } finally {
    await producer.disconnect();
  }
}

const iso = (offsetMs = 0) => new Date(Date.now() + offsetMs).toISOString();

/** A consistent tender lifecycle for one tender; each call returns fresh event ids. */
export function tenderLifecycle(opts: { tenderId?: string; org?: string; officer?: string; supplierOrg?: string; supplier?: string; title?: string } = {}) {
  const tenderId = opts.tenderId ?? randomUUID();
  const org = opts.org ?? 'buyer-org';
  const officer = opts.officer ?? 'officer-1';
  const supplierOrg = opts.supplierOrg ?? 'supplier-org';
  const supplier = opts.supplier ?? 'supplier-1';
  const title = opts.title ?? 'Road repair';
  const bidId = randomUUID();
  const base = (version: number, actor = officer, at = 0) => ({ tenderId, orgId: org, actorId: actor, occurredAt: iso(at), tenderVersion: version });
  const budget = { amount: '1000.00', currency: 'GEL' };
  const ev = (ceType: string, payload: unknown): TestEvent => ({ eventId: randomUUID(), ceType, key: tenderId, payload });
  return {
    tenderId,
    bidId,
    created: () =>
      ev('kvary.tenders.tender.created.v1', { ...base(1), title, description: '', budget, deadline: iso(86_400_000), status: 'draft' }),
    updated: (newTitle: string) => ev('kvary.tenders.tender.updated.v1', { ...base(2, officer, 1), changes: { title: newTitle } }),
    published: (version = 2) =>
      ev('kvary.tenders.tender.published.v1', {
        ...base(version, officer, 2),
        title,
        budget,
        deadline: iso(86_400_000),
        status: 'published',
        publishedAt: iso(2),
      }),
    bid: (version = 2) =>
      ev('kvary.tenders.tender.bid-submitted.v1', { ...base(version, supplier, 3), bidId, supplierOrgId: supplierOrg, amount: { amount: '900.00', currency: 'GEL' } }),
    closed: (version = 3) => ev('kvary.tenders.tender.closed.v1', { ...base(version, officer, 4), status: 'closed', closedAt: iso(4), bidCount: 1 }),
  };
}


export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { value: number; labels: Record<string, string | number> }[];
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

export interface ToolResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The final JSON line, parsed (undefined when stdout has none). */
  json: Record<string, unknown> & { items?: Record<string, unknown>[]; rows?: Record<string, unknown>[] };
  ms: number;
}

function toolArgs(tool: 'replay-kes-dlq' | 'replay-kes-outbox-poison', args: string[]): string[] {
  return ['--conditions=kvary-source', '--import', 'tsx', path.join(SERVICE_DIR, 'src/tools', `${tool}.ts`), ...args];
}

function result(status: number | null, stdout: string, stderr: string, started: number): ToolResult {
  const last = stdout.trim().split('\n').at(-1) ?? '';
  let json: ToolResult['json'] = {};
  try {
    json = JSON.parse(last);
  } catch {
    json = {};
  }
  return { status, stdout, stderr, json, ms: Date.now() - started };
}

/** Runs a tool as a real process (blocking), in the service folder like `npm --prefix` does. */
export function runToolSync(tool: 'replay-kes-dlq' | 'replay-kes-outbox-poison', args: string[], env: Record<string, string>): ToolResult {
  const started = Date.now();
  const r = spawnSync(process.execPath, toolArgs(tool, args), {
    cwd: SERVICE_DIR,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return result(r.status, r.stdout, r.stderr, started);
}

/** The same, without blocking (for concurrent runs). */
export function runTool(tool: 'replay-kes-dlq' | 'replay-kes-outbox-poison', args: string[], env: Record<string, string>): Promise<ToolResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, toolArgs(tool, args), { cwd: SERVICE_DIR, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve(result(status, stdout, stderr, started)));
  });
}
