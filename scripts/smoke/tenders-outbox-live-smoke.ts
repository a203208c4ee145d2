// `npm run tenders:outbox:live-smoke`: follows one tender through the running system —
// HTTP command → outbox row → relay → Kafka — and prints ONE JSON object: {"ok":true, steps:
// {name: ms}} or {"ok":false, step, error} with exit code 1, within KES_SMOKE_TIMEOUT_MS.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { loadConfig } from '@kvary/platform/config';
import { createKafka, parseBrokers } from '@kvary/platform/kafka';
import { loadOrCreateDevKeys } from '@kvary/identity/keys';
import { signAccessToken } from '@kvary/identity/tokens';

const config = loadConfig(
  z.object({
    DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/kvary'),
    KAFKA_BROKERS: z.string().min(1).default('127.0.0.1:9092'),
    TENDERS_URL: z.string().url().default('http://127.0.0.1:4060'),
    RELAY_URL: z.string().url().default('http://127.0.0.1:4061'),
    AUTH_ISSUER: z.string().default('http://127.0.0.1:4100'),
    AUTH_AUDIENCE: z.string().default('kvary'),
    /** How long to wait for the services' /health at the start (the main job starts them). */
    KES_SMOKE_WAIT_MS: z.coerce.number().int().min(0).default(5000),
    KES_SMOKE_TIMEOUT_MS: z.coerce.number().int().min(1000).default(30000),
  }),
);

const steps: Record<string, number> = {};
let current = 'start';
const facts: Record<string, unknown> = {};

function finish(ok: boolean, error?: string): never {
  const result = ok ? { ok, steps, ...facts } : { ok, step: current, error, steps, ...facts };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(ok ? 0 : 1);
}

async function run<T>(name: string, fn: () => Promise<T>): Promise<T> {
  current = name;
  const started = Date.now();
  const value = await fn();
  steps[name] = Date.now() - started;
  return value;
}

async function poll<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}${lastError ? ` (${(lastError as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function health(url: string): Promise<true | undefined> {
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { ok?: boolean };
  if (res.status === 200 && body.ok === true) return true;
  throw new Error(`${url}/health answered ${res.status} ${JSON.stringify(body)}`);
}

setTimeout(
  () => finish(false, `no result within ${config.KES_SMOKE_WAIT_MS + config.KES_SMOKE_TIMEOUT_MS} ms`),
  config.KES_SMOKE_WAIT_MS + config.KES_SMOKE_TIMEOUT_MS,
).unref();

const db = new pg.Client({ connectionString: config.DATABASE_URL, connectionTimeoutMillis: 3000 });
try {
  await run('health', async () => {
    for (const [name, url] of [
      ['svc-tenders', config.TENDERS_URL],
      ['kes-outbox-relay', config.RELAY_URL],
    ] as const) {
      current = `health:${name}`;
      await poll(`${name} is not healthy at ${url}`, config.KES_SMOKE_WAIT_MS, () => health(url));
    }
  });

  const token = await run('token', async () => {
    const keys = await loadOrCreateDevKeys();
    return signAccessToken(keys.signingKey, {
      sub: 'smoke-officer',
      roles: ['PROCUREMENT_OFFICER'],
      orgId: 'org-smoke',
      issuer: config.AUTH_ISSUER,
      audience: config.AUTH_AUDIENCE,
      expiresIn: '5m',
    });
  });

  const tenderId = await run('create-tender', async () => {
    const res = await fetch(`${config.TENDERS_URL}/api/v1/tenders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      body: JSON.stringify({
        title: `Live smoke ${new Date().toISOString()}`,
        description: 'Created by tenders:outbox:live-smoke',
        budget: { amount: '1000.00', currency: 'GEL' },
        deadline: new Date(Date.now() + 7 * 86400_000).toISOString(),
      }),
      signal: AbortSignal.timeout(5000),
    });
    const body = (await res.json()) as { id?: string; error?: { message?: string } };
    if (res.status !== 201 || !body.id) throw new Error(`POST /api/v1/tenders answered ${res.status}: ${JSON.stringify(body)}`);
    return body.id;
  });
  facts.tenderId = tenderId;

  await db.connect();
  const row = await run('outbox-dispatched', () =>
    poll('the outbox row was not dispatched in time (is the relay running?)', 15000, async () => {
      const { rows } = await db.query(
        `SELECT event_id, event_type, status, kafka_partition, kafka_offset, last_error FROM kes_outbox_events
          WHERE aggregate_id = $1 ORDER BY id LIMIT 1`,
        [tenderId],
      );
      const r = rows[0];
      if (!r) throw new Error('no outbox row for the tender');
      if (r.status === 'poison') throw new Error(`outbox row is poison: ${r.last_error}`);
      return r.status === 'dispatched' ? r : undefined;
    }),
  );
  facts.eventId = row.event_id;
  facts.eventType = row.event_type;

  await run('kafka-event', async () => {
    const kafka = createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: 'kes-live-smoke', retries: 1 });
    const groupId = `kes-live-smoke-${randomUUID()}`;
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: 'kes.tenders.v1', fromBeginning: true });
      const found = new Promise<Record<string, string>>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message, partition }) => {
            const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
            if (headers.ce_id === row.event_id) resolve({ ...headers, partition: String(partition), offset: message.offset });
          },
        });
      });
      // Read exactly where the relay recorded the acknowledgement; the ce_id must match.
      consumer.seek({ topic: 'kes.tenders.v1', partition: row.kafka_partition, offset: String(row.kafka_offset) });
      const headers = await poll('the event was not found on Kafka by ce_id', 10000, async () =>
        Promise.race([found, new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))]),
      );
      facts.kafka = { topic: 'kes.tenders.v1', partition: Number(headers.partition), offset: headers.offset, ce_type: headers.ce_type };
    } finally {
      await consumer.disconnect();
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect();
    }
  });
  await db.end();
  finish(true);
} catch (error) {
  await db.end().catch(() => undefined);
  finish(false, (error as Error).message);
}
