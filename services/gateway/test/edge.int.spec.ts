// What every caller gets from the edge: locale resolution and Content-Language, localized
// errors, /api/v1/context, /health, request ids and trace context, security headers, body and
// rate limits, and the gateway's metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bearer,
  call,
  closedPortUrl,
  errorOf,
  startGateway,
  token,
  startStack,
  type AuthStandIn,
  type Gateway,
  type Stack,
  type TendersStandIn,
} from './harness.js';

let auth: AuthStandIn;
let tenders: TendersStandIn;
let gateway: Gateway;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
  ({ auth, tenders, gateway } = stack);
});
afterAll(async () => stack?.close());

const lastTendersCall = () => tenders.calls().at(-1);

describe('locale', () => {
  const cases: { name: string; path: string; headers: Record<string, string>; expected: 'ka' | 'en' }[] = [
    { name: 'default', path: '/api/v1/tenders', headers: {}, expected: 'ka' },
    { name: 'Accept-Language en-US', path: '/api/v1/tenders', headers: { 'accept-language': 'en-US,en;q=0.9' }, expected: 'en' },
    { name: 'Accept-Language by q-value', path: '/api/v1/tenders', headers: { 'accept-language': 'ka;q=0.3, fr, en;q=0.8' }, expected: 'en' },
    { name: 'Accept-Language unsupported only', path: '/api/v1/tenders', headers: { 'accept-language': 'fr-FR, de;q=0.5' }, expected: 'ka' },
    { name: 'cookie beats Accept-Language', path: '/api/v1/tenders', headers: { cookie: 'kes_locale=en', 'accept-language': 'ka' }, expected: 'en' },
    { name: 'query beats cookie', path: '/api/v1/tenders?lang=ka', headers: { cookie: 'kes_locale=en', 'accept-language': 'en' }, expected: 'ka' },
    { name: 'query `locale`', path: '/api/v1/tenders?locale=en', headers: { 'accept-language': 'ka' }, expected: 'en' },
    { name: 'unsupported query falls through to the cookie', path: '/api/v1/tenders?lang=fr', headers: { cookie: 'kes_locale=en' }, expected: 'en' },
  ];

  it.each(cases)('$name -> $expected, forwarded upstream and on the response', async ({ path, headers, expected }) => {
    const res = await call(gateway, 'GET', path, { headers });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-language')).toBe(expected);
    expect(lastTendersCall()?.headers['accept-language']).toBe(expected);
  });

  it('puts Content-Language on every response, errors and operations included', async () => {
    for (const [method, path] of [
      ['GET', '/nope?lang=en'],
      ['POST', '/api/v1/tenders?lang=en'],
      ['GET', '/health?lang=en'],
      ['GET', '/metrics?lang=en'],
      ['GET', '/api/v1/context?lang=en'],
    ] as const) {
      const res = await call(gateway, method, path, { body: method === 'POST' ? {} : undefined });
      expect(res.headers.get('content-language'), `${method} ${path}`).toBe('en');
    }
  });

  it('localizes gateway errors (Georgian by default)', async () => {
    const ka = await call(gateway, 'POST', '/api/v1/tenders', { body: {} });
    expect(ka.body).toEqual({ error: { code: 'UNAUTHORIZED', message: 'საჭიროა ავტორიზაცია' } });
    const en = await call(gateway, 'POST', '/api/v1/tenders', { headers: { 'accept-language': 'en' }, body: {} });
    expect(en.body).toEqual({ error: { code: 'UNAUTHORIZED', message: 'authentication required' } });
    const supplier = await token(auth.key, ['SUPPLIER']);
    const forbidden = await call(gateway, 'POST', '/api/v1/tenders?lang=en', { headers: bearer(supplier), body: {} });
    expect(errorOf(forbidden)).toEqual({ code: 'FORBIDDEN', message: 'this action needs the role PROCUREMENT_OFFICER' });
    const notFound = await call(gateway, 'GET', '/api/v1/nothing');
    expect(errorOf(notFound).message).toBe('მისამართი /api/v1/nothing არ არსებობს');
  });
});

describe('GET /api/v1/context', () => {
  it('describes a guest', async () => {
    const res = await call(gateway, 'GET', '/api/v1/context?lang=en');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      locale: 'en',
      scope: 'GUEST',
      roles: ['GUEST'],
      user: null,
      workspace: null,
      message: 'Resolving locale, route permissions, and workspace projection. Current scope: Guest',
    });
    const routes = res.body.permittedRoutes as { method: string; path: string }[];
    expect(routes).toContainEqual({ method: 'GET', path: '/api/v1/tenders' });
    expect(routes).toContainEqual({ method: 'POST', path: '/api/v1/auth/login' });
    expect(routes).not.toContainEqual({ method: 'POST', path: '/api/v1/tenders' });
    expect(routes).not.toContainEqual({ method: 'GET', path: '/api/v1/workspace' });
    const ka = await call(gateway, 'GET', '/api/v1/context');
    expect(ka.body.locale).toBe('ka');
    expect(ka.body.message).toBe('ენის, მისამართების ნებართვებისა და სამუშაო სივრცის პროექციის განსაზღვრა. მიმდინარე არე: სტუმარი');
  });

  it('describes a signed-in officer with the workspace projection from svc-tenders', async () => {
    const officer = await token(auth.key, ['PROCUREMENT_OFFICER'], 'buyer-org', 'officer-1');
    const res = await call(gateway, 'GET', '/api/v1/context?lang=en', { headers: bearer(officer) });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      locale: 'en',
      scope: 'PROCUREMENT_OFFICER',
      roles: ['PROCUREMENT_OFFICER'],
      user: { sub: 'officer-1', orgId: 'buyer-org' },
      workspace: tenders.workspace.body,
      message: 'Resolving locale, route permissions, and workspace projection. Current scope: Procurement officer',
    });
    expect(res.body.workspaceError).toBeUndefined();
    expect(res.body.permittedRoutes).toContainEqual({ method: 'POST', path: '/api/v1/tenders/:id/publish' });
    expect(res.body.permittedRoutes).not.toContainEqual({ method: 'POST', path: '/api/v1/tenders/:id/bids' });
    const got = tenders.requests.filter((r) => r.url === '/api/v1/workspace').at(-1);
    expect(got?.headers.authorization).toBe(`Bearer ${officer}`);
    expect(got?.headers['accept-language']).toBe('en');
  });

  it('reports a missing workspace without failing', async () => {
    const supplier = await token(auth.key, ['SUPPLIER']);
    tenders.workspace = { status: 404, body: { error: { code: 'NOT_FOUND', message: 'no workspace' } } };
    try {
      const res = await call(gateway, 'GET', '/api/v1/context', { headers: bearer(supplier) });
      expect(res.status).toBe(200);
      expect(res.body.workspace).toBeNull();
      expect(res.body.workspaceError).toEqual({ code: 'WORKSPACE_NOT_FOUND', upstream: 'svc-tenders', status: 404 });
    } finally {
      tenders.workspace = { status: 200, body: { orgId: 'org-1', tendersByStatus: { draft: 1 }, recentActivity: [] } };
    }
  });

  it('reports an unreachable tenders service without failing', async () => {
    const down = await startGateway({ authUrl: auth.url, tendersUrl: await closedPortUrl() });
    try {
      const res = await call(down, 'GET', '/api/v1/context', { headers: bearer(await token(auth.key, ['SUPPLIER'])) });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ workspace: null, workspaceError: { code: 'UPSTREAM_UNAVAILABLE', upstream: 'svc-tenders' } });
    } finally {
      await down.close();
    }
  });
});

describe('GET /health', () => {
  it('answers 200 when both services are healthy', async () => {
    const res = await call(gateway, 'GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, service: 'gateway', services: { 'svc-auth': { ok: true }, 'svc-tenders': { ok: true } } });
  });

  it('answers 503 naming a failing or unreachable service', async () => {
    tenders.healthy = false;
    try {
      const res = await call(gateway, 'GET', '/health');
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ ok: false, failing: ['svc-tenders'], services: { 'svc-auth': { ok: true }, 'svc-tenders': { ok: false } } });
    } finally {
      tenders.healthy = true;
    }
    const down = await startGateway({ authUrl: await closedPortUrl(), tendersUrl: tenders.url });
    try {
      const res = await call(down, 'GET', '/health');
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ ok: false, failing: ['svc-auth'], services: { 'svc-auth': { ok: false }, 'svc-tenders': { ok: true } } });
    } finally {
      await down.close();
    }
  });
});

describe('request id and trace context', () => {
  it('creates both when absent, forwards them upstream and returns them', async () => {
    const res = await call(gateway, 'GET', '/api/v1/tenders');
    const requestId = res.headers.get('x-request-id');
    const traceparent = res.headers.get('traceparent');
    expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(lastTendersCall()?.headers['x-request-id']).toBe(requestId);
    expect(lastTendersCall()?.headers.traceparent).toBe(traceparent);
  });

  it('propagates a valid request id and continues a valid trace with a child span', async () => {
    const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
    const res = await call(gateway, 'GET', '/api/v1/tenders', { headers: { 'x-request-id': 'client-req-42', traceparent: incoming } });
    expect(res.headers.get('x-request-id')).toBe('client-req-42');
    const forwarded = lastTendersCall()?.headers.traceparent as string;
    expect(forwarded).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-00$/);
    expect(forwarded).not.toBe(incoming);
    expect(res.headers.get('traceparent')).toBe(forwarded);
    expect(lastTendersCall()?.headers['x-request-id']).toBe('client-req-42');
  });

  it('replaces an invalid request id and an invalid traceparent', async () => {
    for (const traceparent of ['garbage', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']) {
      const res = await call(gateway, 'GET', '/api/v1/tenders', { headers: { 'x-request-id': 'bad id with spaces', traceparent } });
      expect(res.headers.get('x-request-id')).not.toBe('bad id with spaces');
      expect(lastTendersCall()?.headers['x-request-id']).toBe(res.headers.get('x-request-id'));
      const forwarded = lastTendersCall()?.headers.traceparent as string;
      expect(forwarded).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(forwarded).not.toContain('00000000000000000000000000000000');
    }
  });
});

describe('protection', () => {
  it('sets security headers', async () => {
    const res = await call(gateway, 'GET', '/api/v1/tenders');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  it('refuses a body over the limit with a localized 413, before any service sees it', async () => {
    const small = await startGateway({ authUrl: auth.url, tendersUrl: tenders.url }, { GATEWAY_BODY_LIMIT_BYTES: '2048' });
    try {
      const before = tenders.calls().length;
      const officer = await token(auth.key, ['PROCUREMENT_OFFICER']);
      const res = await call(small, 'POST', '/api/v1/tenders?lang=en', { headers: bearer(officer), body: { title: 'x'.repeat(5000) } });
      expect(res.status).toBe(413);
      expect(errorOf(res)).toEqual({ code: 'PAYLOAD_TOO_LARGE', message: 'the request body is larger than 2048 bytes' });
      expect(tenders.calls().length).toBe(before);
      const ok = await call(small, 'POST', '/api/v1/tenders', { headers: bearer(officer), body: { title: 'x'.repeat(500) } });
      expect(ok.status).toBe(201);
    } finally {
      await small.close();
    }
  });

  it('rate-limits per client with a localized 429', async () => {
    const limited = await startGateway({ authUrl: auth.url, tendersUrl: tenders.url }, { GATEWAY_RATE_LIMIT_MAX: '3' });
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await call(limited, 'GET', '/api/v1/tenders')).status);
      expect(statuses).toEqual([200, 200, 200]);
      const res = await call(limited, 'GET', '/api/v1/tenders?lang=en');
      expect(res.status).toBe(429);
      expect(errorOf(res).code).toBe('RATE_LIMITED');
      expect(errorOf(res).message).toMatch(/^too many requests; retry in \d+ s$/);
      expect(res.headers.get('retry-after')).toBeTruthy();
      expect(res.headers.get('content-language')).toBe('en');
      // Operations stay reachable for probes and scrapes.
      expect((await call(limited, 'GET', '/health')).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('/metrics', () => {
  it('counts requests by table route, method and status and times upstream calls', async () => {
    await call(gateway, 'GET', '/api/v1/tenders/t-9');
    await call(gateway, 'GET', '/api/v1/not-a-route');
    const res = await call(gateway, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/kes_gateway_requests_total\{route="\/api\/v1\/tenders\/:id",method="GET",status="200",service="gateway-test"\} \d+/);
    expect(res.text).toMatch(/kes_gateway_requests_total\{route="unmatched",method="GET",status="404",service="gateway-test"\} \d+/);
    expect(res.text).toMatch(/kes_gateway_upstream_duration_seconds_count\{[^}]*upstream="svc-tenders",outcome="response"[^}]*\} [1-9]/);
  });
});
