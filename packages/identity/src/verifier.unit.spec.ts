import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SignJWT, base64url, exportSPKI, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@kvary/platform/errors';
import { generateSigningKey, jwksOf, type SigningKey } from './keys.js';
import { signAccessToken } from './tokens.js';
import { createTokenVerifier, type TokenVerifier } from './verifier.js';

const issuer = 'http://127.0.0.1:4100';
const audience = 'kvary';
let key: SigningKey;
let otherKey: SigningKey;
let dir: string;
let verifier: TokenVerifier;

beforeAll(async () => {
  key = await generateSigningKey();
  otherKey = await generateSigningKey();
  dir = await mkdtemp(path.join(tmpdir(), 'kvary-identity-'));
  const jwksPath = path.join(dir, 'jwks.json');
  await writeFile(jwksPath, JSON.stringify(jwksOf(key)));
  verifier = createTokenVerifier({ jwksUrl: pathToFileURL(jwksPath).href, issuer, audience });
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const sign = (overrides: Partial<Parameters<typeof signAccessToken>[1]> = {}, signer: SigningKey = key) =>
  signAccessToken(signer, { sub: 'user-1', roles: ['PROCUREMENT_OFFICER'], orgId: 'org-1', issuer, audience, ...overrides });

async function rejection(token: string): Promise<AppError> {
  try {
    await verifier.verify(token);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error('token was accepted');
}

describe('createTokenVerifier (file JWKS)', () => {
  it('accepts a valid token and returns sub, roles and org', async () => {
    const token = await sign({ roles: ['SUPPLIER', 'PROCUREMENT_OFFICER'] });
    await expect(verifier.verify(token)).resolves.toEqual({
      sub: 'user-1',
      roles: ['SUPPLIER', 'PROCUREMENT_OFFICER'],
      orgId: 'org-1',
      token,
    });
  });

  it('drops roles it does not know and allows no org', async () => {
    const token = await new SignJWT({ roles: ['SUPPLIER', 'ROOT'] })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid })
      .setSubject('u')
      .setIssuer(issuer)
      .setAudience(audience)
      .setExpirationTime('5m')
      .sign(key.privateKey);
    await expect(verifier.verify(token)).resolves.toMatchObject({ roles: ['SUPPLIER'], orgId: null });
  });

  describe('rejection matrix', () => {
    it('alg none', async () => {
      const header = base64url.encode(JSON.stringify({ alg: 'none', kid: key.kid, typ: 'JWT' }));
      const payload = base64url.encode(
        JSON.stringify({ sub: 'user-1', roles: ['GOVERNANCE_ADMIN'], iss: issuer, aud: audience, exp: Math.floor(Date.now() / 1000) + 60 }),
      );
      const error = await rejection(`${header}.${payload}.`);
      expect(error).toMatchObject({ statusCode: 401, code: 'INVALID_TOKEN' });
      expect(error.message).toMatch(/algorithm "none" is not accepted/);
    });

    it('HS256 signed with the public key material', async () => {
      const pem = await exportSPKI(await publicKeyOf(key));
      for (const secret of [new TextEncoder().encode(pem), new TextEncoder().encode(JSON.stringify(key.publicJwk))]) {
        const token = await new SignJWT({ roles: ['GOVERNANCE_ADMIN'] })
          .setProtectedHeader({ alg: 'HS256', kid: key.kid })
          .setSubject('user-1')
          .setIssuer(issuer)
          .setAudience(audience)
          .setExpirationTime('5m')
          .sign(secret);
        const error = await rejection(token);
        expect(error).toMatchObject({ statusCode: 401, code: 'INVALID_TOKEN' });
        expect(error.message).toMatch(/algorithm "HS256" is not accepted/);
      }
    });

    it('signed by another key under the known kid', async () => {
      const forged = { ...otherKey, kid: key.kid };
      const error = await rejection(await sign({}, forged));
      expect(error.message).toMatch(/signature is not valid/);
    });

    it('expired', async () => {
      const error = await rejection(await sign({ expiresIn: -60 }));
      expect(error.message).toMatch(/expired/);
    });

    it('wrong issuer', async () => {
      const error = await rejection(await sign({ issuer: 'http://evil.example' }));
      expect(error.message).toMatch(/claim "iss"/);
    });

    it('wrong audience', async () => {
      const error = await rejection(await sign({ audience: 'someone-else' }));
      expect(error.message).toMatch(/claim "aud"/);
    });

    it('unknown kid', async () => {
      const error = await rejection(await sign({}, otherKey));
      expect(error.message).toMatch(/kid/);
    });

    it('no kid', async () => {
      const token = await new SignJWT({ roles: [] })
        .setProtectedHeader({ alg: 'ES256' })
        .setSubject('u')
        .setIssuer(issuer)
        .setAudience(audience)
        .setExpirationTime('5m')
        .sign(key.privateKey);
      expect((await rejection(token)).message).toMatch(/no key id/);
    });

    it('garbage and missing claims', async () => {
      expect((await rejection('not-a-jwt')).message).toMatch(/malformed/);
      const noExp = await new SignJWT({ roles: [] })
        .setProtectedHeader({ alg: 'ES256', kid: key.kid })
        .setSubject('u')
        .setIssuer(issuer)
        .setAudience(audience)
        .sign(key.privateKey);
      expect((await rejection(noExp)).message).toMatch(/claim "exp"/);
    });
  });

  it('answers 503 when the key file is missing', async () => {
    const missing = createTokenVerifier({ jwksUrl: pathToFileURL(path.join(dir, 'nope.json')).href, issuer, audience });
    await expect(missing.verify(await sign())).rejects.toMatchObject({ statusCode: 503, code: 'AUTH_UNAVAILABLE' });
  });

  it('picks up a rotated key file without restart', async () => {
    const jwksPath = path.join(dir, 'rotating.json');
    await writeFile(jwksPath, JSON.stringify(jwksOf(key)));
    const rotating = createTokenVerifier({ jwksUrl: pathToFileURL(jwksPath).href, issuer, audience });
    await expect(rotating.verify(await sign({}, otherKey))).rejects.toThrow(/kid/);
    await writeFile(jwksPath, JSON.stringify(jwksOf(key, otherKey)));
    await expect(rotating.verify(await sign({}, otherKey))).resolves.toMatchObject({ sub: 'user-1' });
  });
});

describe('createTokenVerifier (remote JWKS)', () => {
  let server: Server;
  let hits = 0;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(jwksOf(key)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('fetches the JWKS once and caches it', async () => {
    const { port } = server.address() as AddressInfo;
    const remote = createTokenVerifier({ jwksUrl: `http://127.0.0.1:${port}/jwks.json`, issuer, audience });
    await expect(remote.verify(await sign())).resolves.toMatchObject({ sub: 'user-1' });
    await expect(remote.verify(await sign({ sub: 'user-2' }))).resolves.toMatchObject({ sub: 'user-2' });
    expect(hits).toBe(1);
  });
});

async function publicKeyOf(k: SigningKey) {
  return (await importJWK(k.publicJwk, k.alg, { extractable: true })) as Parameters<typeof exportSPKI>[0];
}
