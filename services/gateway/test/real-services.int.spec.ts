// The real svc-auth and svc-tenders (their buildApp on per-file databases, listening on port 0)
// behind the gateway, sharing one signing key as in a deployment: a password login through the
// gateway sets the session cookie, the cookie becomes a bearer token at the edge, and a tender
// is created and read with it; logout ends it.
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness as startAuth, type Harness as AuthHarness } from '../../svc-auth/test/harness.js';
import { draftBody, startHarness as startTenders, type Harness as TendersHarness } from '../../svc-tenders/test/harness.js';
import { ALLOWED_ORIGIN, bearer, call, startGateway, type Gateway } from './harness.js';

let tenders: TendersHarness;
let auth: AuthHarness;
let gateway: Gateway;

const urlOf = (app: { server: { address(): unknown } }) => `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

beforeAll(async () => {
  tenders = await startTenders('gwrealtenders');
  auth = await startAuth('gwrealauth', { keys: { current: tenders.key, previous: null, source: 'test' } });
  await tenders.app.listen({ port: 0, host: '127.0.0.1' });
  await auth.app.listen({ port: 0, host: '127.0.0.1' });
  gateway = await startGateway({ authUrl: urlOf(auth.app), tendersUrl: urlOf(tenders.app) });
  await auth.createUser({ email: 'officer@buyer.example', password: 'correct horse battery', roles: ['PROCUREMENT_OFFICER'], orgId: 'buyer-org' });
});
afterAll(async () => {
  await gateway?.close();
  await auth?.close();
  await tenders?.close();
});

describe('gateway -> real svc-auth and svc-tenders', () => {
  it('serves the JWKS and answers /me with 401 without a session', async () => {
    const jwks = await call(gateway, 'GET', '/.well-known/jwks.json');
    expect(jwks.status).toBe(200);
    expect((jwks.body.keys as { kid: string }[]).map((k) => k.kid)).toContain(tenders.key.kid);
    expect((await call(gateway, 'GET', '/api/v1/auth/me')).status).toBe(401);
  });

  it('logs in, creates and reads a tender with the session cookie, and logs out', async () => {
    const login = await call(gateway, 'POST', '/api/v1/auth/login', {
      headers: { origin: ALLOWED_ORIGIN },
      body: { email: 'officer@buyer.example', password: 'correct horse battery' },
    });
    expect(login.status, login.text).toBe(200);
    expect(login.body.accessToken).toEqual(expect.any(String));
    const session = login.headers.getSetCookie().find((c) => c.startsWith('kes_session='))?.split(';')[0] ?? '';
    expect(session).toMatch(/^kes_session=.+/);

    const me = await call(gateway, 'GET', '/api/v1/auth/me', { headers: { cookie: session } });
    expect(me.status, me.text).toBe(200);

    const created = await call(gateway, 'POST', '/api/v1/tenders', { headers: { cookie: session, origin: ALLOWED_ORIGIN }, body: draftBody() });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ status: 'draft', orgId: 'buyer-org' });
    const id = created.body.id as string;
    const read = await call(gateway, 'GET', `/api/v1/tenders/${id}`, { headers: { cookie: session } });
    expect(read.status, read.text).toBe(200);
    // The access token from login works as a bearer token too.
    const viaBearer = await call(gateway, 'GET', `/api/v1/tenders/${id}`, { headers: bearer(login.body.accessToken as string) });
    expect(viaBearer.status).toBe(200);

    const context = await call(gateway, 'GET', '/api/v1/context?lang=en', { headers: { cookie: session } });
    expect(context.body).toMatchObject({ scope: 'PROCUREMENT_OFFICER', user: { orgId: 'buyer-org' } });

    // Without an Origin the cookie cannot write (CSRF).
    expect((await call(gateway, 'POST', '/api/v1/tenders', { headers: { cookie: session }, body: draftBody() })).status).toBe(403);

    const logout = await call(gateway, 'POST', '/api/v1/auth/logout', { headers: { cookie: session, origin: ALLOWED_ORIGIN } });
    expect(logout.status).toBe(204);
    expect((await call(gateway, 'GET', '/api/v1/auth/me', { headers: { cookie: session } })).status).toBe(401);
    // The cached token was dropped with the session: the draft is no longer visible.
    expect((await call(gateway, 'GET', `/api/v1/tenders/${id}`, { headers: { cookie: session } })).status).toBe(404);
  });
});
