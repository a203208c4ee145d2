// Signing keys from files (current + previous), the published JWKS, and a consumer verifying
// svc-auth tokens over HTTP the way svc-tenders and the gateway do.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, type SigningKey } from '@kvary/identity/keys';
import { signAccessToken } from '@kvary/identity/tokens';
import { createTokenVerifier } from '@kvary/identity/verifier';
import { loadAuthKeys } from '../src/auth/keys.js';
import { AUDIENCE, ISSUER, expectStatus, startHarness, type Harness } from './harness.js';

let dir: string;
let current: SigningKey;
let previous: SigningKey;
let h: Harness;
let jwksUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'svc-auth-keys-'));
  current = await generateSigningKey();
  previous = await generateSigningKey();
  await writeFile(path.join(dir, 'current.jwk.json'), JSON.stringify(current.privateJwk));
  // The previous key may be given as its public half only.
  await writeFile(path.join(dir, 'previous.jwk.json'), JSON.stringify(previous.publicJwk));
  const keys = await loadAuthKeys({
    KES_ENV: 'production',
    AUTH_SIGNING_KEY_FILE: path.join(dir, 'current.jwk.json'),
    AUTH_PREVIOUS_SIGNING_KEY_FILE: path.join(dir, 'previous.jwk.json'),
  });
  h = await startHarness('authjwks', { keys });
  await h.createUser({ email: 'supplier@example.org', password: 'pw-supplier-1', roles: ['SUPPLIER'], orgId: 'org-s' });
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  jwksUrl = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}/.well-known/jwks.json`;
});
afterAll(async () => {
  await h.close();
  await rm(dir, { recursive: true, force: true });
});

describe('GET /.well-known/jwks.json', () => {
  it('publishes the current and the previous public key, cacheable for 5 minutes', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    const body = expectStatus(res, 200) as { keys: Record<string, unknown>[] };
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(body.keys.map((k) => k.kid)).toEqual([current.kid, previous.kid]);
    for (const key of body.keys) {
      expect(key).toMatchObject({ kty: 'EC', alg: 'ES256', use: 'sig' });
      expect(key.d).toBeUndefined();
    }
  });

  it('lets another service verify login tokens and tokens of the previous key (rotation)', async () => {
    const verifier = createTokenVerifier({ jwksUrl, issuer: ISSUER, audience: AUDIENCE });
    const { accessToken, user } = expectStatus(await h.login('supplier@example.org', 'pw-supplier-1'), 200) as {
      accessToken: string;
      user: { id: string };
    };
    await expect(verifier.verify(accessToken)).resolves.toMatchObject({ sub: user.id, roles: ['SUPPLIER'], orgId: 'org-s' });
    const old = await signAccessToken(previous, { sub: user.id, roles: ['SUPPLIER'], issuer: ISSUER, audience: AUDIENCE });
    await expect(verifier.verify(old)).resolves.toMatchObject({ sub: user.id });
    // /me accepts it too: the service verifies against its own published set.
    const me = await h.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${old}` } });
    expect(me.statusCode).toBe(200);
  });

  it('refuses tokens of a key it does not publish', async () => {
    const stranger = await generateSigningKey();
    const forged = await signAccessToken(stranger, { sub: 'x', roles: ['GOVERNANCE_ADMIN'], issuer: ISSUER, audience: AUDIENCE });
    const me = await h.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${forged}` } });
    expect(me.statusCode).toBe(401);
  });
});

describe('loadAuthKeys', () => {
  it('refuses a missing key file with a clear message', async () => {
    await expect(loadAuthKeys({ KES_ENV: 'production', AUTH_SIGNING_KEY_FILE: path.join(dir, 'nope.json') })).rejects.toThrow(
      /cannot read signing key .*nope\.json/,
    );
  });

  it('refuses a current key without its private part', async () => {
    await expect(
      loadAuthKeys({ KES_ENV: 'production', AUTH_SIGNING_KEY_FILE: path.join(dir, 'previous.jwk.json') }),
    ).rejects.toThrow(/no private part/);
  });
});
