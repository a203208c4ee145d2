// Test harness: the real svc-auth app on a per-file clone of the migrated template database,
// freshly generated signing keys (current + previous), cheap scrypt (KES_ENV=test), and a
// tiny cookie-carrying "browser" for flows that cross servers.
import type { LightMyRequestResponse } from 'fastify';
import { generateSigningKey } from '@kvary/identity/keys';
import type { Role } from '@kvary/identity/roles';
import { parseConfig } from '@kvary/platform/config';
import type { HttpApp } from '@kvary/platform/http';
import { createLogger } from '@kvary/platform/logging';
import { createMetricsRegistry, type Registry } from '@kvary/platform/metrics';
import { createTestDatabase, type TestDatabase } from '@kvary/testing/postgres';
import { buildApp } from '../src/app.js';
import { createSelfVerifier, type AuthKeys } from '../src/auth/keys.js';
import { PasswordVerifier } from '../src/auth/passwords.js';
import { insertUser, type UserRow } from '../src/auth/users.js';
import { configSchema, type AuthConfig } from '../src/config.js';

export const ISSUER = 'http://127.0.0.1:4100';
export const AUDIENCE = 'kvary';

export interface Harness {
  app: HttpApp;
  db: TestDatabase;
  config: AuthConfig;
  keys: AuthKeys;
  metrics: Registry;
  passwords: PasswordVerifier;
  createUser(user: { email: string; password?: string; roles?: Role[]; orgId?: string | null; disabled?: boolean }): Promise<UserRow>;
  login(email: string, password: string, options?: { cookie?: string; ip?: string }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  /** Reuse a database (e.g. two app instances on one database). */
  db?: TestDatabase;
  keys?: AuthKeys;
}

export async function startHarness(label: string, options: HarnessOptions = {}): Promise<Harness> {
  const db = options.db ?? (await createTestDatabase(label));
  const config = parseConfig(configSchema, {
    KES_ENV: 'test',
    AUTH_SCRYPT_LOG_N: '14',
    DATABASE_URL: db.url,
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    ...options.env,
  });
  const keys = options.keys ?? { current: await generateSigningKey(), previous: (await generateSigningKey()).publicJwk, source: 'test' };
  const self = await createSelfVerifier(keys, { issuer: config.AUTH_ISSUER, audience: config.AUTH_AUDIENCE });
  const metrics = createMetricsRegistry({ service: 'svc-auth-test' });
  const app = buildApp({
    pool: db.pool,
    logger: createLogger({ name: 'svc-auth-test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false }),
    metrics,
    config,
    keys,
    verifier: self.verifier,
  });
  await app.ready();
  const passwords = new PasswordVerifier(config.scryptLogN);
  return {
    app,
    db,
    config,
    keys,
    metrics,
    passwords,
    createUser: async (user) => {
      const row = await insertUser(db.pool, {
        email: user.email,
        displayName: user.email.split('@')[0] ?? user.email,
        roles: user.roles ?? [],
        orgId: user.orgId ?? null,
        passwordHash: user.password === undefined ? null : await passwords.hash(user.password),
      });
      if (user.disabled) await db.pool.query('UPDATE auth_users SET disabled = true WHERE id = $1', [row.id]);
      return row;
    },
    login: (email, password, opts = {}) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email, password },
        headers: opts.cookie ? { cookie: `kes_session=${opts.cookie}` } : {},
        remoteAddress: opts.ip ?? '127.0.0.1',
      }),
    close: async () => {
      await app.close();
      await self.dispose();
      if (!options.db) await db.close();
    },
  };
}

/** The value of one cookie from a response's Set-Cookie headers (undefined when not set). */
export function setCookie(res: { headers: Record<string, unknown> }, name: string): { value: string; attributes: string } | undefined {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
  for (const line of list) {
    const [pair = '', ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    if (pair.slice(0, eq).trim() === name) return { value: pair.slice(eq + 1).trim(), attributes: attributes.join(';') };
  }
  return undefined;
}

/** Throws with the response body when the status is not the expected one. */
export function expectStatus(res: LightMyRequestResponse, status: number): Record<string, unknown> {
  if (res.statusCode !== status) throw new Error(`expected ${status}, got ${res.statusCode}: ${res.body}`);
  return res.body ? (res.json() as Record<string, unknown>) : {};
}

/**
 * A minimal browser for one host: keeps cookies (name, path; ports share cookies as in real
 * browsers), never follows redirects on its own so a test sees every hop.
 */
export class Browser {
  readonly cookies = new Map<string, { value: string; path: string }>();

  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url);
    const headers = new Headers(init.headers);
    const cookie = [...this.cookies]
      .filter(([, c]) => target.pathname.startsWith(c.path))
      .map(([name, c]) => `${name}=${c.value}`)
      .join('; ');
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(target, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) this.store(line);
    return res;
  }

  private store(line: string): void {
    const [pair = '', ...attrs] = line.split(';').map((p) => p.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const attr = (key: string) => attrs.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1);
    const expires = attr('expires');
    const gone = attr('max-age') === '0' || value === '' || (expires !== undefined && Date.parse(expires) <= Date.now());
    if (gone) this.cookies.delete(name);
    else this.cookies.set(name, { value, path: attr('path') ?? '/' });
  }
}
