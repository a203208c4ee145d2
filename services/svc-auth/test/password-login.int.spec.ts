// Password login, sessions, /me, /token and logout against a real Postgres.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { PasswordVerifier } from '../src/auth/passwords.js';
import { DEV_USERS, seedDevUsers } from '../src/dev-users.js';
import { expectStatus, setCookie, startHarness, type Harness } from './harness.js';

let h: Harness;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  h = await startHarness('authlogin');
  await h.createUser({ email: 'Officer.One@Example.org', password: PASSWORD, roles: ['PROCUREMENT_OFFICER'], orgId: 'org-buyer-1' });
});
afterAll(() => h.close());

const me = (headers: Record<string, string>) => h.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers });
const token = (cookie: string) => h.app.inject({ method: 'POST', url: '/api/v1/auth/token', headers: { cookie: `kes_session=${cookie}` } });

describe('POST /api/v1/auth/login', () => {
  it('returns an access token and sets an httpOnly session cookie', async () => {
    const res = await h.login('officer.one@example.org', PASSWORD);
    const body = expectStatus(res, 200);
    expect(body).toMatchObject({
      tokenType: 'Bearer',
      expiresIn: 900,
      user: { email: 'Officer.One@Example.org', roles: ['PROCUREMENT_OFFICER'], orgId: 'org-buyer-1' },
    });
    const jwt = body.accessToken as string;
    expect(decodeProtectedHeader(jwt)).toMatchObject({ alg: 'ES256', kid: h.keys.current.kid });
    const claims = decodeJwt(jwt);
    expect(claims).toMatchObject({
      sub: (body.user as { id: string }).id,
      roles: ['PROCUREMENT_OFFICER'],
      org_id: 'org-buyer-1',
      iss: 'http://127.0.0.1:4100',
      aud: 'kvary',
    });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(900);

    const cookie = setCookie(res, 'kes_session');
    expect(cookie?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // KES_ENV=test: Secure (only development drops it).
    for (const attribute of ['HttpOnly', 'SameSite=Lax', 'Path=/', 'Max-Age=28800', 'Secure']) expect(cookie?.attributes).toContain(attribute);
    expect(res.headers['cache-control']).toBe('no-store');

    // Only the SHA-256 of the token is stored.
    const { rows } = await h.db.pool.query<{ id_hash: Buffer }>('SELECT id_hash FROM auth_sessions');
    const hash = createHash('sha256').update(cookie?.value ?? '').digest();
    expect(rows.some((r) => r.id_hash.equals(hash))).toBe(true);
    const dump = await h.db.pool.query<{ row: string }>('SELECT row_to_json(s)::text AS row FROM auth_sessions s');
    expect(dump.rows.some((r) => r.row.includes(cookie?.value ?? '-'))).toBe(false);
  });

  it('answers the same 401 for an unknown user and a wrong password', async () => {
    const unknown = await h.login('nobody@example.org', PASSWORD);
    const wrong = await h.login('officer.one@example.org', 'not the password');
    for (const res of [unknown, wrong]) {
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({ error: { code: 'INVALID_CREDENTIALS', message: 'The email or password is not correct' } });
      expect(setCookie(res, 'kes_session')).toBeUndefined();
    }
  });

  it('refuses disabled users and users without a password the same way', async () => {
    await h.createUser({ email: 'disabled@example.org', password: PASSWORD, disabled: true });
    await h.createUser({ email: 'oidc-only@example.org' });
    for (const email of ['disabled@example.org', 'oidc-only@example.org']) {
      const res = await h.login(email, PASSWORD);
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('INVALID_CREDENTIALS');
    }
  });

  it('refuses unknown fields and malformed bodies', async () => {
    const extra = await h.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'a@b.c', password: 'x', role: 'GOVERNANCE_ADMIN' } });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().error.code).toBe('VALIDATION_FAILED');
    const missing = await h.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: 'a@b.c' } });
    expect(missing.statusCode).toBe(400);
  });

  it('counts logins by method and outcome', async () => {
    const metrics = await h.metrics.getSingleMetricAsString('kes_auth_logins_total');
    expect(metrics).toMatch(/kes_auth_logins_total\{method="password",outcome="success",service="svc-auth-test"\} [1-9]/);
    expect(metrics).toMatch(/kes_auth_logins_total\{method="password",outcome="invalid_credentials",service="svc-auth-test"\} [1-9]/);
  });
});

describe('sessions', () => {
  it('starts a new session at every login and kills the one the browser came with', async () => {
    const first = setCookie(await h.login('officer.one@example.org', PASSWORD), 'kes_session')?.value ?? '';
    const second = setCookie(await h.login('officer.one@example.org', PASSWORD, { cookie: first }), 'kes_session')?.value ?? '';
    expect(second).not.toBe(first);
    expect((await me({ cookie: `kes_session=${first}` })).statusCode).toBe(401);
    expect((await token(first)).statusCode).toBe(401);
    expect((await me({ cookie: `kes_session=${second}` })).statusCode).toBe(200);
  });

  it('/me: 401 without credentials, 200 with the cookie and with a bearer token', async () => {
    const anonymous = await me({});
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json().error.code).toBe('UNAUTHORIZED');
    expect((await me({ cookie: 'kes_session=garbage' })).statusCode).toBe(401);

    const login = await h.login('officer.one@example.org', PASSWORD);
    const { accessToken, user } = login.json();
    const cookie = setCookie(login, 'kes_session')?.value ?? '';
    const viaCookie = await me({ cookie: `kes_session=${cookie}` });
    expect(expectStatus(viaCookie, 200)).toEqual({ user, roles: ['PROCUREMENT_OFFICER'] });
    const viaBearer = await me({ authorization: `Bearer ${accessToken}` });
    expect(expectStatus(viaBearer, 200)).toEqual({ user, roles: ['PROCUREMENT_OFFICER'] });

    const tampered = await me({ authorization: `Bearer ${accessToken.slice(0, -4)}AAAA` });
    expect(tampered.statusCode).toBe(401);
    expect(tampered.headers['www-authenticate']).toContain('invalid_token');
  });

  it('/token mints a fresh access token from the session cookie', async () => {
    const cookie = setCookie(await h.login('officer.one@example.org', PASSWORD), 'kes_session')?.value ?? '';
    const res = await token(cookie);
    const body = expectStatus(res, 200);
    expect(body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { email: 'Officer.One@Example.org' } });
    expect(decodeJwt(body.accessToken as string)).toMatchObject({ roles: ['PROCUREMENT_OFFICER'], org_id: 'org-buyer-1' });
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/auth/token' })).statusCode).toBe(401);
  });

  it('logout revokes the session server-side and clears the cookie', async () => {
    const cookie = setCookie(await h.login('officer.one@example.org', PASSWORD), 'kes_session')?.value ?? '';
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { cookie: `kes_session=${cookie}` } });
    expect(res.statusCode).toBe(204);
    expect(setCookie(res, 'kes_session')?.attributes).toContain('Max-Age=0');
    expect((await me({ cookie: `kes_session=${cookie}` })).statusCode).toBe(401);
    expect((await token(cookie)).statusCode).toBe(401);
    const { rows } = await h.db.pool.query('SELECT revoked_at FROM auth_sessions WHERE id_hash = $1', [
      createHash('sha256').update(cookie).digest(),
    ]);
    expect(rows[0]?.revoked_at).toBeInstanceOf(Date);
    // Logging out twice (or without a session) is fine.
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/auth/logout' })).statusCode).toBe(204);
  });

  it('an expired session no longer works', async () => {
    const cookie = setCookie(await h.login('officer.one@example.org', PASSWORD), 'kes_session')?.value ?? '';
    await h.db.pool.query(`UPDATE auth_sessions SET expires_at = now() - interval '1 second' WHERE id_hash = $1`, [
      createHash('sha256').update(cookie).digest(),
    ]);
    expect((await me({ cookie: `kes_session=${cookie}` })).statusCode).toBe(401);
    expect((await token(cookie)).statusCode).toBe(401);
  });
});

describe('passwords', () => {
  it('stores scrypt$<logN>$8$1$salt$hash and upgrades an outdated cost at login', async () => {
    const old = await new PasswordVerifier(12).hash(PASSWORD);
    expect(old).toMatch(/^scrypt\$12\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    const user = await h.createUser({ email: 'legacy@example.org' });
    await h.db.pool.query('UPDATE auth_users SET password_hash = $2 WHERE id = $1', [user.id, old]);
    expectStatus(await h.login('legacy@example.org', PASSWORD), 200);
    const { rows } = await h.db.pool.query<{ password_hash: string }>('SELECT password_hash FROM auth_users WHERE id = $1', [user.id]);
    expect(rows[0]?.password_hash).toMatch(/^scrypt\$14\$8\$1\$/);
  });
});

describe('seed:dev users', () => {
  it('upserts one user per role, idempotently, and they can log in', async () => {
    const first = await seedDevUsers(h.db.pool, h.passwords);
    expect(first.map((r) => [r.email, r.role, r.action])).toEqual(DEV_USERS.map((u) => [u.email, u.role, 'created']));
    const second = await seedDevUsers(h.db.pool, h.passwords);
    expect(second.map((r) => r.id)).toEqual(first.map((r) => r.id));
    expect(second.every((r) => r.action === 'updated' && !r.passwordReset)).toBe(true);
    const officer = DEV_USERS.find((u) => u.role === 'PROCUREMENT_OFFICER');
    const res = await h.login(officer?.email ?? '', officer?.password ?? '');
    expect(expectStatus(res, 200).user).toMatchObject({ roles: ['PROCUREMENT_OFFICER'], orgId: 'org-buyer-1' });
  });
});
