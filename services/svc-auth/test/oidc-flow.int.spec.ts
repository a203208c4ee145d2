// The whole OIDC login (authorization code + PKCE, state, nonce) against a real dev-oidc
// provider started here, driven through real HTTP with a cookie-carrying browser.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevOidc, type DevOidc } from '@kvary/dev-oidc/provider';
import { Browser, startHarness, type Harness } from './harness.js';
import { freePort } from '@kvary/testing/wait';

let oidc: DevOidc;
let h: Harness;
let authBase: string;
let redirectUri: string;


beforeAll(async () => {
  // The redirect URI embeds svc-auth's port, which both sides must know before they start.
  const authPort = await freePort();
  authBase = `http://127.0.0.1:${authPort}`;
  redirectUri = `${authBase}/api/v1/auth/oidc/callback`;
  oidc = await startDevOidc({ port: 0, redirectUris: [redirectUri], kesEnv: 'test' });
  h = await startHarness('authoidc', { env: { OIDC_ISSUER_URL: oidc.issuer, OIDC_REDIRECT_URI: redirectUri, OIDC_POST_LOGIN_REDIRECT: '/workspace' } });
  await h.app.listen({ port: authPort, host: '127.0.0.1' });
});
afterAll(async () => {
  await h?.close();
  await oidc?.close();
});

interface Authorized {
  browser: Browser;
  /** The provider's redirect back to us: redirect_uri?code=...&state=...&iss=... */
  callback: URL;
  state: string;
  authorizationUrl: URL;
}

/** svc-auth login -> provider -> sign-in form -> POST -> back to the redirect URI (not yet called). */
async function authorize(browser = new Browser()): Promise<Authorized> {
  const start = await browser.fetch(`${authBase}/api/v1/auth/oidc/login`);
  expect(start.status).toBe(302);
  const authorizationUrl = new URL(start.headers.get('location') ?? '');
  const state = browser.cookies.get('kes_oidc_state')?.value ?? '';
  let next: URL = authorizationUrl;
  for (let hop = 0; hop < 10; hop++) {
    if (next.href.startsWith(redirectUri)) return { browser, callback: next, state, authorizationUrl };
    const res = await browser.fetch(next);
    if (res.status >= 300 && res.status < 400) {
      next = new URL(res.headers.get('location') ?? '', next);
      continue;
    }
    const html = await res.text();
    expect(res.status, html).toBe(200);
    // The dev sign-in page: one form with the dev user's id.
    const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
    const login = /name="login" value="([^"]+)"/.exec(html)?.[1];
    expect(action && login).toBeTruthy();
    const posted = await browser.fetch(new URL(action ?? '', next), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ login: login ?? '' }).toString(),
    });
    expect(posted.status).toBeGreaterThanOrEqual(300);
    next = new URL(posted.headers.get('location') ?? '', next);
  }
  throw new Error('the provider never redirected back');
}

const sessionCookieSet = (res: Response) => res.headers.getSetCookie().some((c) => /^kes_session=[^;]/.test(c));

async function meOf(browser: Browser) {
  const res = await browser.fetch(`${authBase}/api/v1/auth/me`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('OIDC login against the dev provider', () => {
  it('sends the browser to the provider with code + PKCE S256, state and nonce', async () => {
    const browser = new Browser();
    const res = await browser.fetch(`${authBase}/api/v1/auth/oidc/login`);
    expect(res.status).toBe(302);
    const url = new URL(res.headers.get('location') ?? '');
    expect(url.origin).toBe(oidc.issuer);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: 'kvary-dev',
      redirect_uri: redirectUri,
      code_challenge_method: 'S256',
      scope: 'openid email profile',
    });
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('nonce')).toBeTruthy();
    const state = url.searchParams.get('state') ?? '';
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('kes_oidc_state='));
    expect(cookie).toContain(`kes_oidc_state=${state}`);
    for (const attribute of ['HttpOnly', 'SameSite=Lax', 'Path=/api/v1/auth/oidc', 'Max-Age=600']) expect(cookie).toContain(attribute);
    // The verifier stays on the server.
    const { rows } = await h.db.pool.query('SELECT code_verifier, used_at FROM auth_oidc_login_states WHERE state = $1', [state]);
    expect(rows[0]).toMatchObject({ used_at: null });
    expect(url.href).not.toContain(rows[0]?.code_verifier);
  });

  it('completes the whole flow: new user with no roles, session cookie, redirect', async () => {
    const { browser, callback } = await authorize();
    const res = await browser.fetch(callback);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/workspace');
    expect(sessionCookieSet(res)).toBe(true);
    expect(browser.cookies.has('kes_oidc_state')).toBe(false);
    const me = await meOf(browser);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ user: { email: 'oidc.user@kvary.dev', displayName: 'Dev OIDC User', roles: [], orgId: null }, roles: [] });
    const { rows } = await h.db.pool.query('SELECT issuer, subject, email FROM auth_user_identities');
    expect(rows).toEqual([{ issuer: oidc.issuer, subject: 'dev-oidc-user-1', email: 'oidc.user@kvary.dev' }]);

    // A second login finds the same user through (issuer, sub) and rotates the session.
    const oldSession = browser.cookies.get('kes_session')?.value;
    const again = await authorize(browser);
    const json = await browser.fetch(again.callback, { headers: { accept: 'application/json' } });
    expect(json.status).toBe(200);
    const body = (await json.json()) as { accessToken: string; user: { id: string } };
    expect(body.user.id).toBe((me.body.user as { id: string }).id);
    expect(body.accessToken).toMatch(/^ey/);
    expect(browser.cookies.get('kes_session')?.value).not.toBe(oldSession);
    const stale = await fetch(`${authBase}/api/v1/auth/me`, { headers: { cookie: `kes_session=${oldSession}` } });
    expect(stale.status).toBe(401);
  });

  it('links an existing user with the same verified email', async () => {
    await h.db.pool.query(`DELETE FROM auth_users WHERE lower(email) = 'oidc.user@kvary.dev'`);
    const existing = await h.createUser({ email: 'OIDC.User@kvary.dev', password: 'pw', roles: ['PROCUREMENT_OFFICER'], orgId: 'org-buyer-1' });
    const { browser, callback } = await authorize();
    expect((await browser.fetch(callback)).status).toBe(302);
    const me = await meOf(browser);
    expect(me.body).toMatchObject({ user: { id: existing.id, roles: ['PROCUREMENT_OFFICER'], orgId: 'org-buyer-1' } });
    const { rows } = await h.db.pool.query('SELECT user_id FROM auth_user_identities WHERE subject = $1', ['dev-oidc-user-1']);
    expect(rows).toEqual([{ user_id: existing.id }]);
  });

  it('refuses a state that does not match the browser cookie (no session)', async () => {
    const { browser, callback } = await authorize();
    const forged = new URL(callback);
    forged.searchParams.set('state', 'x'.repeat(43));
    const res = await browser.fetch(forged);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('OIDC_STATE_INVALID');
    expect(sessionCookieSet(res)).toBe(false);
  });

  it('refuses a callback from another browser (no state cookie)', async () => {
    const { callback } = await authorize();
    const res = await new Browser().fetch(callback);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('OIDC_STATE_INVALID');
    expect(sessionCookieSet(res)).toBe(false);
  });

  it('refuses an ID token whose nonce does not match (no session)', async () => {
    const { browser, callback, state } = await authorize();
    await h.db.pool.query(`UPDATE auth_oidc_login_states SET nonce = 'tampered-nonce' WHERE state = $1`, [state]);
    const res = await browser.fetch(callback);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('OIDC_LOGIN_REJECTED');
    expect(body.error.message).toMatch(/claim/i);
    expect(sessionCookieSet(res)).toBe(false);
    expect(browser.cookies.has('kes_session')).toBe(false);
  });

  it('refuses a replayed callback and a replayed code (no session)', async () => {
    const { browser, callback, state } = await authorize();
    expect((await browser.fetch(callback)).status).toBe(302);
    browser.cookies.delete('kes_session');

    // Same URL again, even with the state cookie put back: the state is single use.
    browser.cookies.set('kes_oidc_state', { value: state, path: '/api/v1/auth/oidc' });
    const replay = await browser.fetch(callback);
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as { error: { code: string } }).error.code).toBe('OIDC_STATE_INVALID');
    expect(sessionCookieSet(replay)).toBe(false);

    // The spent code under a fresh, valid state: the provider refuses it.
    const fresh = await browser.fetch(`${authBase}/api/v1/auth/oidc/login`);
    const freshState = new URL(fresh.headers.get('location') ?? '').searchParams.get('state') ?? '';
    const reused = new URL(callback);
    reused.searchParams.set('state', freshState);
    const res = await browser.fetch(reused);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('OIDC_LOGIN_REJECTED');
    expect(sessionCookieSet(res)).toBe(false);
  });

  it('answers 400 when the provider returns an error (user cancelled)', async () => {
    const browser = new Browser();
    const start = await browser.fetch(`${authBase}/api/v1/auth/oidc/login`);
    const toInteraction = await browser.fetch(start.headers.get('location') ?? '');
    const interaction = new URL(toInteraction.headers.get('location') ?? '', oidc.issuer);
    let next = new URL(`${interaction.pathname}/abort`, oidc.issuer);
    for (let hop = 0; hop < 5 && !next.href.startsWith(redirectUri); hop++) {
      next = new URL((await browser.fetch(next)).headers.get('location') ?? '', next);
    }
    expect(next.searchParams.get('error')).toBe('access_denied');
    const res = await browser.fetch(next);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('OIDC_LOGIN_FAILED');
    expect(sessionCookieSet(res)).toBe(false);
  });

  it('counts OIDC logins by outcome', async () => {
    const text = await h.metrics.getSingleMetricAsString('kes_auth_logins_total');
    expect(text).toMatch(/method="oidc",outcome="success"/);
    expect(text).toMatch(/method="oidc",outcome="state_invalid"/);
    expect(text).toMatch(/method="oidc",outcome="rejected"/);
  });
});

describe('OIDC provider unavailable', () => {
  it('svc-auth starts anyway and answers 502 OIDC_PROVIDER_UNAVAILABLE', async () => {
    const down = await startHarness('authoidcdown', { db: h.db, env: { OIDC_ISSUER_URL: `http://127.0.0.1:${await freePort()}` } });
    try {
      const res = await down.app.inject({ method: 'GET', url: '/api/v1/auth/oidc/login' });
      expect(res.statusCode).toBe(502);
      expect(res.json().error.code).toBe('OIDC_PROVIDER_UNAVAILABLE');
      expect((await down.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    } finally {
      await down.close();
    }
  });
});

describe('dev-oidc', () => {
  it('with autoLogin signs the dev user in without the form', async () => {
    const auto = await startDevOidc({ port: 0, autoLogin: true, kesEnv: 'test' });
    try {
      const browser = new Browser();
      const url = new URL('/auth', auto.issuer);
      url.search = new URLSearchParams({
        client_id: 'kvary-dev',
        response_type: 'code',
        scope: 'openid email',
        redirect_uri: 'http://127.0.0.1:4100/api/v1/auth/oidc/callback',
        state: 's'.repeat(43),
        nonce: 'n'.repeat(43),
        code_challenge: 'c'.repeat(43),
        code_challenge_method: 'S256',
      }).toString();
      let next = url;
      for (let hop = 0; hop < 6 && !next.href.startsWith('http://127.0.0.1:4100/'); hop++) {
        const res = await browser.fetch(next);
        expect(res.status, await res.clone().text()).toBeGreaterThanOrEqual(300);
        next = new URL(res.headers.get('location') ?? '', next);
      }
      expect(next.searchParams.get('code')).toBeTruthy();
      expect(next.searchParams.get('state')).toBe('s'.repeat(43));
    } finally {
      await auto.close();
    }
  });

  it('refuses PKCE-less requests and KES_ENV=production', async () => {
    const res = await fetch(
      `${oidc.issuer}/auth?client_id=kvary-dev&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(redirectUri)}&state=${'s'.repeat(43)}`,
      { redirect: 'manual' },
    );
    expect(new URL(res.headers.get('location') ?? '').searchParams.get('error')).toBe('invalid_request');
    await expect(startDevOidc({ port: 0, kesEnv: 'production' })).rejects.toThrow(/refuses to run with KES_ENV=production/);
  });
});
