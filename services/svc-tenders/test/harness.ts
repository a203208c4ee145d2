// Test harness: the real app on a per-file clone of the migrated template database, a local
// JWKS file with a freshly generated key, token helpers and outbox readers.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { LightMyRequestResponse } from 'fastify';
import type { TenderEventName } from '@kvary/contracts/tenders';
import { generateSigningKey, jwksOf, type SigningKey } from '@kvary/identity/keys';
import type { Role } from '@kvary/identity/roles';
import { signAccessToken } from '@kvary/identity/tokens';
import { createTokenVerifier } from '@kvary/identity/verifier';
import type { HttpApp } from '@kvary/platform/http';
import { createLogger } from '@kvary/platform/logging';
import { createMetricsRegistry, type Registry } from '@kvary/platform/metrics';
import { createTestDatabase, type TestDatabase } from '@kvary/testing/postgres';
import { buildApp } from '../src/app.js';
import type { ConsumerStatus } from '../src/workspace/consumer.js';

export const ISSUER = 'http://127.0.0.1:4100';
export const AUDIENCE = 'kvary';

export interface OutboxRow {
  id: string;
  event_id: string;
  aggregate_type: string;
  aggregate_id: string;
  event_type: string;
  event_version: number;
  topic: string;
  source: string;
  payload: Record<string, unknown>;
  headers: Record<string, string>;
}

export interface Harness {
  app: HttpApp;
  db: TestDatabase;
  metrics: Registry;
  key: SigningKey;
  /** Moves the service clock (deadlines, event times). */
  advance(ms: number): void;
  /** Set to make the next commands fail after their domain write. */
  faults: { beforeOutboxWrite?: (event: TenderEventName) => void | Promise<void> };
  /** Set to show a consumer's status in /health. */
  health: { consumer?: () => ConsumerStatus };
  token(role: Role | Role[], org: string | null, sub?: string): Promise<string>;
  outbox(aggregateId?: string): Promise<OutboxRow[]>;
  close(): Promise<void>;
}

export async function startHarness(label: string): Promise<Harness> {
  const db = await createTestDatabase(label);
  const key = await generateSigningKey();
  const dir = await mkdtemp(path.join(tmpdir(), 'svc-tenders-test-'));
  const jwksPath = path.join(dir, 'jwks.json');
  await writeFile(jwksPath, JSON.stringify(jwksOf(key)));
  const verifier = createTokenVerifier({ jwksUrl: pathToFileURL(jwksPath).href, issuer: ISSUER, audience: AUDIENCE });
  const metrics = createMetricsRegistry({ service: 'svc-tenders-test' });
  let offsetMs = 0;
  const faults: Harness['faults'] = {};
  const health: Harness['health'] = {};
  const app = buildApp({
    pool: db.pool,
    logger: createLogger({ name: 'svc-tenders-test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false }),
    verifier,
    metrics,
    config: { BODY_LIMIT_BYTES: 65536, OUTBOX_NOTIFY: true, TRUST_PROXY: false },
    now: () => new Date(Date.now() + offsetMs),
    beforeOutboxWrite: (event) => faults.beforeOutboxWrite?.(event),
    consumerStatus: () => health.consumer?.() ?? { state: 'off', mode: 'off' },
  });
  await app.ready();
  return {
    app,
    db,
    metrics,
    key,
    faults,
    health,
    advance: (ms) => {
      offsetMs += ms;
    },
    token: (role, org, sub = 'user-1') =>
      signAccessToken(key, { sub, roles: Array.isArray(role) ? role : [role], orgId: org, issuer: ISSUER, audience: AUDIENCE }),
    outbox: async (aggregateId) => {
      const { rows } = await db.pool.query<OutboxRow>(
        `SELECT id::text, event_id::text, aggregate_type, aggregate_id, event_type, event_version, topic, source, payload, headers
         FROM kes_outbox_events WHERE $1::text IS NULL OR aggregate_id = $1 ORDER BY id`,
        [aggregateId ?? null],
      );
      return rows;
    },
    close: async () => {
      await app.close();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export function inFuture(days = 30): string {
  return new Date(Date.now() + days * 86_400_000).toISOString();
}

export const draftBody = (overrides: Record<string, unknown> = {}) => ({
  title: 'Road repair, Rustavi highway',
  description: '2 km of asphalt',
  budget: { amount: '125000.00', currency: 'GEL' },
  deadline: inFuture(),
  ...overrides,
});

/** Throws with the response body when the status is not the expected one. */
export function expectStatus(res: LightMyRequestResponse, status: number): Record<string, unknown> {
  if (res.statusCode !== status) throw new Error(`expected ${status}, got ${res.statusCode}: ${res.body}`);
  return res.json();
}
