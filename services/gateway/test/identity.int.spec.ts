// Identity at the edge: forged and broken tokens stop at the gateway, client-supplied identity
// headers never reach a service, the session cookie is exchanged for a (cached) bearer token,
// cookie-authenticated writes need an allowed Origin, and a dead or slow upstream is named.
import { SignJWT, base64url, exportSPKI, importJWK } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateSigningKey, type SigningKey } from '@kvary/identity/keys';
import { signAccessToken } from '@kvary/identity/tokens';
import { STRIPPED_IDENTITY_HEADERS } from '../src/identity.js';
import {
  ALLOWED_ORIGIN,
  AUDIENCE,
  ISSUER,
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
let otherKey: SigningKey;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
  ({ auth, tenders, gateway } = stack);
  otherKey = await generateSigningKey();
});
afterAll(async () => stack?.close());
beforeEach(() => {
  auth.tokenLifetimeSeconds = 900;
});

const lastTendersCall = () => tenders.calls().at(-1);

/** Logs in through the gateway; returns the kes_session cookie pair ("kes_session=..."). */
async function login(roles: string[], username = 'officer-1', orgId = 'org-1'): Promise<string> {
  const res = await call(gateway, 'POST', '/api/v1/auth/login', { body: { username, roles, orgId } });
  expect(res.status, res.text).toBe(200);
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('kes_session='));
  expect(cookie).toMatch(/HttpOnly/);
  return (cookie ?? '').split(';')[0] ?? '';
}

describe('client-supplied identity headers', () => {
  const injected: Record<string, string> = {
    'x-user-id': 'admin',
    'x-user-roles': 'GOVERNANCE_ADMIN',
    'x-roles': 'GOVERNANCE_ADMIN',
    'x-org-id': 'buyer-org',
    'x-forwarded-user': 'admin',
    'x-auth-request-user': 'admin',
    'x-auth-roles': 'GOVERNANCE_ADMIN',
    'x-kes-identity': 'admin',
    'X-KES-Identity-Roles': 'GOVERNANCE_ADMIN',
    'x-consumer-username': 'admin',
    'remote-user': 'admin',
    'x-remote-user': 'admin',
  };

  it('are stripped before proxying (and harmless headers are kept)', async () => {
    const officer = await token(auth.key, ['PROCUREMENT_OFFICER'], 'buyer-org', 'officer-1');
    for (const headers of [{}, bearer(officer)]) {
      const res = await call(gateway, 'GET', '/api/v1/tenders', { headers: { ...injected, ...headers, 'x-custom-note': 'kept' } });
      expect(res.status, res.text).toBe(200);
      const got = lastTendersCall()?.headers ?? {};
      for (const name of [...Object.keys(injected), ...STRIPPED_IDENTITY_HEADERS]) expect(got[name.toLowerCase()]).toBeUndefined();
      expect(Object.keys(got).filter((h) => h.startsWith('x-kes-identity') || h.startsWith('x-auth-'))).toEqual([]);
      expect(got['x-custom-note']).toBe('kept');
    }
    expect(lastTendersCall()?.headers.authorization).toBe(`Bearer ${officer}`);
  });

  it('grant nothing: an anonymous caller claiming a role is still refused', async () => {
    const before = tenders.calls().length;
    const res = await call(gateway, 'POST', '/api/v1/tenders', { headers: injected, body: {} });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(tenders.calls().length).toBe(before);
  });

  it('replaces client-supplied forwarding headers with its own', async () => {
    await call(gateway, 'GET', '/api/v1/tenders', { headers: { 'x-forwarded-for': '10.9.9.9', 'x-real-ip': '10.9.9.9', forwarded: 'for=10.9.9.9' } });
    const got = lastTendersCall()?.headers ?? {};
    expect(got['x-forwarded-for']).toBe('127.0.0.1');
    expect(got['x-real-ip']).toBeUndefined();
    expect(got.forwarded).toBeUndefined();
  });
});

describe('the JWT matrix is rejected at the gateway', () => {
  const claims = () => ({ sub: 'mallory', roles: ['PROCUREMENT_OFFICER'], org_id: 'buyer-org' });
  const cases: [string, () => Promise<string>][] = [
    [
      'alg none',
      async () => {
        const header = base64url.encode(JSON.stringify({ alg: 'none', kid: auth.key.kid, typ: 'JWT' }));
        const payload = base64url.encode(JSON.stringify({ ...claims(), iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 600 }));
        return `${header}.${payload}.`;
      },
    ],
    [
      'HS256 signed with the public key',
      async () => {
        const publicKey = await importJWK(auth.key.publicJwk, auth.key.alg, { extractable: true });
        const pem = await exportSPKI(publicKey as Parameters<typeof exportSPKI>[0]);
        return new SignJWT(claims())
          .setProtectedHeader({ alg: 'HS256', kid: auth.key.kid })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setExpirationTime('10m')
          .sign(new TextEncoder().encode(pem));
      },
    ],
    ['signed by the wrong key under the known kid', () => signAccessToken({ ...otherKey, kid: auth.key.kid }, { ...base(), roles: ['PROCUREMENT_OFFICER'] })],
    ['expired', () => signAccessToken(auth.key, { ...base(), expiresIn: -120 })],
    ['wrong issuer', () => signAccessToken(auth.key, { ...base(), issuer: 'http://evil.example' })],
    ['wrong audience', () => signAccessToken(auth.key, { ...base(), audience: 'another-app' })],
    ['unknown kid', () => signAccessToken(otherKey, base())],
    ['not a JWT', async () => 'not-a-jwt'],
  ];
  function base() {
    return { sub: 'mallory', roles: ['PROCUREMENT_OFFICER' as const], orgId: 'buyer-org', issuer: ISSUER, audience: AUDIENCE };
  }

  it.each(cases)('%s -> 401 on an open and on a protected route, never proxied', async (_name, make) => {
    const bad = await make();
    const before = tenders.calls().length;
    for (const [method, path] of [
      ['GET', '/api/v1/tenders'],
      ['POST', '/api/v1/tenders'],
      ['GET', '/api/v1/context'],
    ] as const) {
      const res = await call(gateway, method, path, { headers: bearer(bad), body: method === 'POST' ? {} : undefined });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(401);
      expect(errorOf(res).code).toBe('INVALID_TOKEN');
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect(tenders.calls().length).toBe(before);
  });

  it('refuses an Authorization header that is not a bearer token', async () => {
    const res = await call(gateway, 'GET', '/api/v1/tenders', { headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } });
    expect(res.status).toBe(401);
  });

  it('accepts a valid token and forwards it as the bearer', async () => {
    const good = await token(auth.key, ['PROCUREMENT_OFFICER']);
    const res = await call(gateway, 'POST', '/api/v1/tenders', { headers: bearer(good), body: { title: 't' } });
    expect(res.status, res.text).toBe(201);
    expect(lastTendersCall()?.headers.authorization).toBe(`Bearer ${good}`);
    expect(lastTendersCall()?.body).toEqual({ title: 't' });
  });
});

describe('session cookie -> bearer token', () => {
  it('passes Set-Cookie back from auth and exchanges the cookie once while the token is fresh', async () => {
    const session = await login(['PROCUREMENT_OFFICER']);
    const callsBefore = auth.tokenCalls;
    const first = await call(gateway, 'GET', '/api/v1/workspace', { headers: { cookie: session } });
    expect(first.status, first.text).toBe(200);
    const forwarded = lastTendersCall()?.headers ?? {};
    expect(forwarded.authorization).toMatch(/^Bearer ey/);
    expect(forwarded.cookie).toBeUndefined();
    for (let i = 0; i < 3; i++) expect((await call(gateway, 'GET', '/api/v1/tenders', { headers: { cookie: session } })).status).toBe(200);
    expect(lastTendersCall()?.headers.authorization).toBe(forwarded.authorization);
    expect(auth.tokenCalls - callsBefore).toBe(1);
    // Another session is another exchange.
    const other = await login(['SUPPLIER'], 'supplier-1');
    await call(gateway, 'GET', '/api/v1/tenders', { headers: { cookie: other } });
    expect(auth.tokenCalls - callsBefore).toBe(2);
  });

  it('shares one exchange between concurrent requests of a session', async () => {
    const session = await login(['SUPPLIER'], 'supplier-2');
    const before = auth.tokenCalls;
    const results = await Promise.all(Array.from({ length: 5 }, () => call(gateway, 'GET', '/api/v1/tenders', { headers: { cookie: session } })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(auth.tokenCalls - before).toBe(1);
  });

  it('exchanges again shortly before the token expires', async () => {
    auth.tokenLifetimeSeconds = 31; // cached until 30 s before expiry: about one second
    const session = await login(['SUPPLIER'], 'supplier-3');
    const before = auth.tokenCalls;
    await call(gateway, 'GET', '/api/v1/tenders', { headers: { cookie: session } });
    await call(gateway, 'GET', '/api/v1/tenders', { headers: { cookie: session } });
    expect(auth.tokenCalls - before).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1300));
    await call(gateway, 'GET', '/api/v1/tenders', { headers: { cookie: session } });
    expect(auth.tokenCalls - before).toBe(2);
  });

  it('forgets the cached token on logout; a dead session is a GUEST', async () => {
    const session = await login(['SUPPLIER'], 'supplier-4');
    expect((await call(gateway, 'GET', '/api/v1/workspace', { headers: { cookie: session } })).status).toBe(200);
    const out = await call(gateway, 'POST', '/api/v1/auth/logout', { headers: { cookie: session, origin: ALLOWED_ORIGIN } });
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie()[0]).toMatch(/^kes_session=;.*Max-Age=0/);
    const after = await call(gateway, 'GET', '/api/v1/workspace', { headers: { cookie: session } });
    expect(after.status).toBe(401);
    const open = await call(gateway, 'GET', '/api/v1/tenders', { headers: { cookie: session } });
    expect(open.status).toBe(200);
    expect(lastTendersCall()?.headers.authorization).toBeUndefined();
  });

  it('forwards cookies to svc-auth untouched (session and OIDC state)', async () => {
    const session = await login(['SUPPLIER'], 'supplier-5');
    const me = await call(gateway, 'GET', '/api/v1/auth/me', { headers: { cookie: `${session}; kes_oidc_state=xyz` } });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ sub: 'supplier-5' });
    expect(auth.calls().at(-1)?.headers.cookie).toBe(`${session}; kes_oidc_state=xyz`);
    const oidc = await call(gateway, 'GET', '/api/v1/auth/oidc/login');
    expect(oidc.status).toBe(302);
    expect(oidc.headers.get('location')).toMatch(/^http:\/\/127\.0\.0\.1:4001\/auth/);
    expect(oidc.headers.getSetCookie()[0]).toMatch(/^kes_oidc_state=/);
  });
});

describe('CSRF for cookie-authenticated writes', () => {
  let session: string;
  beforeAll(async () => {
    session = await login(['PROCUREMENT_OFFICER'], 'officer-csrf', 'buyer-org');
  });

  it('refuses a cookie POST without an Origin, or from another origin', async () => {
    const before = tenders.calls().length;
    const extras: Record<string, string>[] = [{}, { origin: 'http://evil.example' }, { origin: 'null' }, { referer: 'http://evil.example/page' }];
    for (const extra of extras) {
      const res = await call(gateway, 'POST', '/api/v1/tenders', { headers: { cookie: session, ...extra }, body: {} });
      expect(res.status, JSON.stringify(extra)).toBe(403);
      expect(errorOf(res).code).toBe('CSRF_REJECTED');
    }
    expect(tenders.calls().length).toBe(before);
  });

  it('lets a cookie POST from an allowed Origin (or Referer) through, with a bearer upstream', async () => {
    const res = await call(gateway, 'POST', '/api/v1/tenders', { headers: { cookie: session, origin: ALLOWED_ORIGIN }, body: {} });
    expect(res.status, res.text).toBe(201);
    expect(lastTendersCall()?.headers.authorization).toMatch(/^Bearer /);
    const viaReferer = await call(gateway, 'POST', '/api/v1/tenders/t-1/publish', {
      headers: { cookie: session, referer: 'http://localhost:4020/tenders/t-1' },
      body: {},
    });
    expect(viaReferer.status, viaReferer.text).toBe(201);
  });

  it('exempts bearer-authenticated writes and cookie reads', async () => {
    const officer = await token(auth.key, ['PROCUREMENT_OFFICER']);
    expect((await call(gateway, 'POST', '/api/v1/tenders', { headers: { ...bearer(officer), cookie: session }, body: {} })).status).toBe(201);
    expect((await call(gateway, 'GET', '/api/v1/tenders', { headers: { cookie: session } })).status).toBe(200);
  });

  it('checks login and logout: login only when an Origin is present, logout with a session always', async () => {
    expect((await call(gateway, 'POST', '/api/v1/auth/login', { body: { username: 'a' } })).status).toBe(200);
    const evil = await call(gateway, 'POST', '/api/v1/auth/login', { headers: { origin: 'http://evil.example' }, body: { username: 'a' } });
    expect(evil.status).toBe(403);
    expect(errorOf(evil).code).toBe('CSRF_REJECTED');
    const logout = await call(gateway, 'POST', '/api/v1/auth/logout', { headers: { cookie: session } });
    expect(logout.status).toBe(403);
    const token = await call(gateway, 'POST', '/api/v1/auth/token', { headers: { cookie: session } });
    expect(token.status).toBe(403);
  });
});

describe('upstream failures', () => {
  it('answers 502 naming svc-auth when the auth service is down (localized)', async () => {
    const down = await startGateway({ authUrl: await closedPortUrl(), tendersUrl: tenders.url });
    try {
      const en = await call(down, 'GET', '/api/v1/auth/me?lang=en');
      expect(en.status).toBe(502);
      expect(en.body).toEqual({ error: { code: 'UPSTREAM_UNAVAILABLE', message: 'auth service is unavailable', upstream: 'svc-auth' } });
      expect(en.headers.get('content-language')).toBe('en');
      const ka = await call(down, 'POST', '/api/v1/auth/login', { body: { username: 'a' } });
      expect(ka.status).toBe(502);
      expect(ka.body).toEqual({ error: { code: 'UPSTREAM_UNAVAILABLE', message: 'ავტორიზაციის სერვისი მიუწვდომელია', upstream: 'svc-auth' } });
      // A session cannot be exchanged either: 502, not a silent GUEST.
      const viaCookie = await call(down, 'GET', '/api/v1/tenders', { headers: { cookie: 'kes_session=abc' } });
      expect(viaCookie.status).toBe(502);
      expect(errorOf(viaCookie).upstream).toBe('svc-auth');
    } finally {
      await down.close();
    }
  });

  it('answers 502 naming svc-tenders when the tenders service is down', async () => {
    const down = await startGateway({ authUrl: auth.url, tendersUrl: await closedPortUrl() });
    try {
      const res = await call(down, 'GET', '/api/v1/tenders?lang=en');
      expect(res.status).toBe(502);
      expect(res.body).toEqual({ error: { code: 'UPSTREAM_UNAVAILABLE', message: 'tenders service is unavailable', upstream: 'svc-tenders' } });
    } finally {
      await down.close();
    }
  });

  it('passes an upstream 503 on as it is, without retrying it', async () => {
    const before = tenders.calls().length;
    const res = await call(gateway, 'GET', '/api/v1/tenders/unavailable');
    expect(res.status).toBe(503);
    expect(errorOf(res).code).toBe('SERVICE_UNAVAILABLE');
    expect(tenders.calls().length - before).toBe(1);
  });

  it('answers 504 when the upstream does not answer within the timeout', async () => {
    const slow = await startGateway({ authUrl: auth.url, tendersUrl: tenders.url }, { GATEWAY_UPSTREAM_TIMEOUT_MS: '300' });
    tenders.slowMs = 1500;
    try {
      const started = Date.now();
      const res = await call(slow, 'GET', '/api/v1/tenders/slow?lang=en');
      expect(res.status, res.text).toBe(504);
      expect(res.body).toEqual({ error: { code: 'UPSTREAM_TIMEOUT', message: 'tenders service did not answer in time', upstream: 'svc-tenders' } });
      expect(Date.now() - started).toBeLessThan(1400);
    } finally {
      tenders.slowMs = 0;
      await slow.close();
    }
  });
});
