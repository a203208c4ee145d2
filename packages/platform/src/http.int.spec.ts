import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '@kvary/testing/postgres';
import { AppError } from './errors.js';
import { createHttpApp } from './http.js';
import { createLogger } from './logging.js';
import { counter, createMetricsRegistry } from './metrics.js';
import { createPool, pingDatabase } from './postgres.js';

const logger = createLogger({ name: 'http-test', level: 'silent', pretty: false });
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('platformhttp');
});
afterAll(async () => db.close());

function app(checks: Record<string, () => Promise<unknown>>) {
  const registry = createMetricsRegistry({ service: 'http-test' });
  counter(registry, { name: 'http_test_total', help: 'test counter' }).inc(3);
  const instance = createHttpApp({ service: 'http-test', logger, healthChecks: checks, metrics: registry, bodyLimitBytes: 1024 });
  instance.post('/things', { schema: { body: z.object({ name: z.string().min(1), count: z.number().int() }).strict() } }, async (req) => ({
    got: req.body.name,
  }));
  instance.get('/conflict', async () => {
    throw new AppError('TENDER_NOT_DRAFT', 'only drafts can be edited', { statusCode: 409 });
  });
  instance.get('/crash', async () => {
    throw new Error('secret internal detail at /srv/x.ts:12');
  });
  return instance;
}

describe('/health', () => {
  it('answers 200 {"ok":true} when the real database answers', async () => {
    const instance = app({ postgres: () => pingDatabase(db.pool) });
    const res = await instance.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ ok: true, service: 'http-test', checks: { postgres: { ok: true } } });
    await instance.close();
  });

  it('answers 503 naming the failing check when Postgres is unreachable', async () => {
    const dead = createPool({ connectionString: 'postgres://postgres@127.0.0.1:1/none' });
    const instance = app({ postgres: () => pingDatabase(dead) });
    const res = await instance.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(503);
    const body = res.json();
    expect(body.ok).toBe(false);
    expect(body.failing).toEqual(['postgres']);
    expect(body.checks.postgres.error).toMatch(/ECONNREFUSED|connect/);
    await instance.close();
    await dead.end();
  });
});

describe('errors and requests', () => {
  const instance = app({});
  afterAll(() => instance.close());

  it('returns 400 naming the offending field', async () => {
    const res = await instance.inject({ method: 'POST', url: '/things', payload: { name: 'a', count: 'x' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'body.count' });
  });

  it('refuses unknown fields', async () => {
    const res = await instance.inject({ method: 'POST', url: '/things', payload: { name: 'a', count: 1, extra: true } });
    expect(res.statusCode).toBe(400);
  });

  it('returns 413 over the body limit and 415 for a wrong content type', async () => {
    const big = await instance.inject({ method: 'POST', url: '/things', payload: { name: 'x'.repeat(5000), count: 1 } });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    const text = await instance.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'text/plain' }, payload: 'hi' });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('returns 400 for malformed JSON', async () => {
    const res = await instance.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: '{"name":' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toBeTruthy();
  });

  it('maps AppError to its status and code', async () => {
    const res = await instance.inject({ method: 'GET', url: '/conflict' });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ error: { code: 'TENDER_NOT_DRAFT', message: 'only drafts can be edited' } });
  });

  it('hides internals of unexpected errors', async () => {
    const res = await instance.inject({ method: 'GET', url: '/crash' });
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('secret');
    expect(res.json()).toEqual({ error: { code: 'INTERNAL', message: 'Internal server error' } });
  });

  it('keeps a caller request id and makes one otherwise', async () => {
    const kept = await instance.inject({ method: 'GET', url: '/conflict', headers: { 'x-request-id': 'abc-123' } });
    expect(kept.headers['x-request-id']).toBe('abc-123');
    const made = await instance.inject({ method: 'GET', url: '/conflict' });
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await instance.inject({ method: 'GET', url: '/nope?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('ROUTE_NOT_FOUND');
  });

  it('serves default and custom metrics on /metrics', async () => {
    const res = await instance.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('process_cpu_user_seconds_total');
    expect(res.body).toMatch(/http_test_total\{service="http-test"\} 3/);
  });
});
