// `npm run tenders:outbox:live-smoke`: follows one tender through the running system, through
// the gateway as a user would: health of 4100/4020/4060/4061 → login as the seeded procurement
// officer → create + publish a tender → both outbox rows dispatched → the published event on
// Kafka (by ce_id, carrying our traceparent) → the tender in the caller's workspace projection.
// Prints ONE JSON object: {"ok":true, steps:{name: ms}} or {"ok":false, step, error}, exit 1,
// always within KES_SMOKE_WAIT_MS + KES_SMOKE_TIMEOUT_MS.
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { loadConfig } from '@kvary/platform/config';
import { createKafka, parseBrokers } from '@kvary/platform/kafka';

const config = loadConfig(
  z.object({
    DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/kvary'),
    KAFKA_BROKERS: z.string().min(1).default('127.0.0.1:9092'),
    GATEWAY_URL: z.string().url().default('http://127.0.0.1:4020'),
    AUTH_URL: z.string().url().default('http://127.0.0.1:4100'),
    TENDERS_URL: z.string().url().default('http://127.0.0.1:4060'),
    RELAY_URL: z.string().url().default('http://127.0.0.1:4061'),
    KES_SMOKE_EMAIL: z.string().default('officer@kvary.dev'),
    KES_SMOKE_PASSWORD: z.string().default('Kvary-dev-officer-2026!'),
    KES_SMOKE_TOPIC: z.string().default('kes.tenders.v1'),
    /** How long to wait for the services' /health first (the main job starts them alongside). */
    KES_SMOKE_WAIT_MS: z.coerce.number().int().min(0).default(5000),
    KES_SMOKE_TIMEOUT_MS: z.coerce.number().int().min(1000).default(45000),
  }),
);

const steps: Record<string, number> = {};
const facts: Record<string, unknown> = {};
let current = 'start';

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

/** Calls fn every 100 ms until it returns a value; throws `what` (with the last error) at the deadline. */
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

async function http(method: string, url: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const res = await fetch(url, {
    method,
    headers: {
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json: json as Record<string, unknown>, headers: res.headers };
}

setTimeout(
  () => finish(false, `no result within ${config.KES_SMOKE_WAIT_MS + config.KES_SMOKE_TIMEOUT_MS} ms`),
  config.KES_SMOKE_WAIT_MS + config.KES_SMOKE_TIMEOUT_MS,
).unref();

const db = new pg.Client({ connectionString: config.DATABASE_URL, connectionTimeoutMillis: 3000 });
try {
  await run('health', async () => {
    for (const [name, url] of [
      ['svc-auth :4100', config.AUTH_URL],
      ['gateway :4020', config.GATEWAY_URL],
      ['svc-tenders :4060', config.TENDERS_URL],
      ['kes-outbox-relay :4061', config.RELAY_URL],
    ] as const) {
      current = `health ${name}`;
      await poll(`${name} is not healthy at ${url}/health`, config.KES_SMOKE_WAIT_MS, async () => {
        const res = await http('GET', `${url}/health`);
        if (res.status === 200 && res.json.ok === true) return true;
        throw new Error(`answered ${res.status} ${JSON.stringify(res.json)}`);
      });
    }
  });

  const token = await run('login', async () => {
    const res = await http('POST', `${config.GATEWAY_URL}/api/v1/auth/login`, {
      body: { email: config.KES_SMOKE_EMAIL, password: config.KES_SMOKE_PASSWORD },
    });
    if (res.status !== 200 || typeof res.json.accessToken !== 'string') {
      throw new Error(`login as ${config.KES_SMOKE_EMAIL} through the gateway answered ${res.status}: ${JSON.stringify(res.json)} (run npm run seed:dev)`);
    }
    return res.json.accessToken;
  });

  // Our own trace id: the outbox row and the Kafka message must carry it.
  const traceId = randomBytes(16).toString('hex');
  const traceparent = `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
  facts.traceId = traceId;

  const tenderId = await run('create-tender', async () => {
    const res = await http('POST', `${config.GATEWAY_URL}/api/v1/tenders`, {
      token,
      headers: { 'idempotency-key': randomUUID(), traceparent },
      body: {
        title: `Live smoke ${new Date().toISOString()}`,
        description: 'Created by tenders:outbox:live-smoke',
        budget: { amount: '1000.00', currency: 'GEL' },
        deadline: new Date(Date.now() + 7 * 86400_000).toISOString(),
      },
    });
    if (res.status !== 201 || typeof res.json.id !== 'string') throw new Error(`POST /api/v1/tenders answered ${res.status}: ${JSON.stringify(res.json)}`);
    return res.json.id;
  });
  facts.tenderId = tenderId;

  await run('publish-tender', async () => {
    const res = await http('POST', `${config.GATEWAY_URL}/api/v1/tenders/${tenderId}/publish`, {
      token,
      headers: { 'idempotency-key': randomUUID(), traceparent },
    });
    if (res.status !== 200) throw new Error(`POST /api/v1/tenders/${tenderId}/publish answered ${res.status}: ${JSON.stringify(res.json)}`);
  });

  await db.connect();
  const published = await run('outbox-dispatched', () =>
    poll('the outbox rows were not dispatched in time (is the relay running?)', 15000, async () => {
      const { rows } = await db.query(
        `SELECT event_id, event_type, status, kafka_partition, kafka_offset, last_error, headers->>'traceparent' AS traceparent
           FROM kes_outbox_events WHERE aggregate_id = $1 ORDER BY id`,
        [tenderId],
      );
      if (rows.length < 2) throw new Error(`${rows.length} outbox row(s) for the tender, expected created + published`);
      const poison = rows.find((r) => r.status === 'poison');
      if (poison) throw new Error(`outbox row is poison: ${poison.last_error}`);
      if (!rows.every((r) => r.status === 'dispatched')) return undefined;
      const last = rows[rows.length - 1];
      if (last.event_type !== 'kvary.tenders.tender.published') throw new Error(`last event is ${last.event_type}`);
      if (!String(last.traceparent ?? '').includes(traceId)) throw new Error(`the outbox row carries traceparent ${last.traceparent}, not our trace`);
      return last;
    }),
  );
  facts.eventId = published.event_id;

  await run('kafka-event', async () => {
    const kafka = createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: 'kes-live-smoke', retries: 1 });
    const groupId = `kes-live-smoke-${randomUUID()}`;
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: config.KES_SMOKE_TOPIC, fromBeginning: true });
      const found = new Promise<Record<string, string>>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message, partition }) => {
            const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
            if (headers.ce_id === published.event_id) resolve({ ...headers, partition: String(partition), offset: message.offset });
          },
        });
      });
      // Start exactly where the relay recorded the broker's acknowledgement.
      consumer.seek({ topic: config.KES_SMOKE_TOPIC, partition: published.kafka_partition, offset: String(published.kafka_offset) });
      const headers = await Promise.race([
        found,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the event was not found on Kafka by ce_id')), 10000)),
      ]);
      if (!String(headers.traceparent ?? '').includes(traceId)) throw new Error(`the Kafka message carries traceparent ${headers.traceparent}`);
      facts.kafka = { topic: config.KES_SMOKE_TOPIC, partition: Number(headers.partition), offset: headers.offset, ce_type: headers.ce_type };
    } finally {
      await consumer.disconnect();
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect();
    }
  });

  await run('workspace-projection', () =>
    poll('the tender did not appear in the workspace projection (is the svc-tenders consumer running?)', 15000, async () => {
      const res = await http('GET', `${config.GATEWAY_URL}/api/v1/workspace`, { token });
      if (res.status !== 200) throw new Error(`GET /api/v1/workspace answered ${res.status}: ${JSON.stringify(res.json)}`);
      const activity = (res.json.recentActivity ?? []) as { eventId: string; tenderId: string }[];
      if (!activity.some((a) => a.eventId === published.event_id)) return undefined;
      facts.workspace = { tendersByStatus: res.json.tendersByStatus };
      return true;
    }),
  );

  await db.end();
  finish(true);
} catch (error) {
  await db.end().catch(() => undefined);
  finish(false, (error as Error).message);
}
