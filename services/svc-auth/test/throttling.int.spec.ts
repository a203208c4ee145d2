// Failed-login throttling (ASVS 2.2.1): per account and per IP, counted in Postgres.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus, startHarness, type Harness } from './harness.js';

let h: Harness;
const LIMITS = { LOGIN_MAX_ACCOUNT_FAILURES: '5', LOGIN_MAX_IP_FAILURES: '8', LOGIN_FAILURE_WINDOW: '15m' };
const PASSWORD = 'Kvary-test-password-1!';

beforeAll(async () => {
  h = await startHarness('auththrottle', { env: LIMITS });
  for (const name of ['locked', 'reset', 'ipvictim', 'other']) await h.createUser({ email: `${name}@example.org`, password: PASSWORD });
});
afterAll(() => h.close());

async function fail(email: string, times: number, ip: string): Promise<void> {
  for (let i = 0; i < times; i++) expect((await h.login(email, 'wrong', { ip })).statusCode).toBe(401);
}

describe('per-account lockout', () => {
  it('locks the account after 5 failures, even for the right password, with Retry-After', async () => {
    await fail('locked@example.org', 5, '10.0.0.1');
    const res = await h.login('locked@example.org', PASSWORD, { ip: '10.0.0.2' });
    expect(res.statusCode).toBe(429);
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(14 * 60);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    expect(res.json().error).toMatchObject({ code: 'TOO_MANY_ATTEMPTS', retryAfterSeconds: retryAfter });
    expect(res.json().error.message).toMatch(/Too many failed logins for this account; try again in \d+ seconds/);
    expect(res.headers['set-cookie']).toBeUndefined();
    // Email case does not dodge the counter; other accounts from that IP are unaffected.
    expect((await h.login('LOCKED@example.org', PASSWORD, { ip: '10.0.0.3' })).statusCode).toBe(429);
    expectStatus(await h.login('other@example.org', PASSWORD, { ip: '10.0.0.1' }), 200);
  });

  it('unlocks when the window has passed', async () => {
    await h.db.pool.query(`UPDATE auth_login_throttle SET window_started_at = now() - interval '16 minutes' WHERE key = 'account:locked@example.org'`);
    expectStatus(await h.login('locked@example.org', PASSWORD, { ip: '10.0.0.4' }), 200);
  });

  it('a success resets the account counter', async () => {
    await fail('reset@example.org', 4, '10.0.1.1');
    expectStatus(await h.login('reset@example.org', PASSWORD, { ip: '10.0.1.1' }), 200);
    await fail('reset@example.org', 4, '10.0.1.2');
    expectStatus(await h.login('reset@example.org', PASSWORD, { ip: '10.0.1.3' }), 200);
  });

  it('counts unknown emails too, so lockout does not reveal which accounts exist', async () => {
    await fail('ghost@example.org', 5, '10.0.2.1');
    expect((await h.login('ghost@example.org', PASSWORD, { ip: '10.0.2.2' })).statusCode).toBe(429);
  });
});

describe('per-IP limit', () => {
  it('refuses every account from an IP after 8 failures, other IPs still log in', async () => {
    const ip = '192.0.2.77';
    // Spread over accounts so no single account is locked.
    for (let i = 0; i < 8; i++) expect((await h.login(`spray${i}@example.org`, 'guess', { ip })).statusCode).toBe(401);
    const res = await h.login('ipvictim@example.org', PASSWORD, { ip });
    expect(res.statusCode).toBe(429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(res.json().error.message).toMatch(/from this address/);
    expectStatus(await h.login('ipvictim@example.org', PASSWORD, { ip: '192.0.2.78' }), 200);
  });

  it('is shared by all instances (counters live in Postgres)', async () => {
    const second = await startHarness('auththrottle2', { db: h.db, env: LIMITS });
    try {
      const res = await second.login('ipvictim@example.org', PASSWORD, { ip: '192.0.2.77' });
      expect(res.statusCode).toBe(429);
    } finally {
      await second.close();
    }
  });
});
