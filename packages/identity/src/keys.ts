// Signing keys: generation, and the development key pair created once under `.local/keys`
// (a private JWK file plus a public jwks.json) so every local process verifies the same tokens.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose';

export const SIGNING_ALGORITHM = 'ES256';

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  /** The private key as a JWK (with kid and alg), as stored in the dev key file. */
  privateJwk: JWK;
  /** The public half as published in a JWKS. */
  publicJwk: JWK;
}

/** A fresh ES256 key pair; the kid is the RFC 7638 thumbprint of the public key. */
export async function generateSigningKey(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  return signingKeyFromJwk({ ...privateJwk, kid: await calculateJwkThumbprint(privateJwk), alg: SIGNING_ALGORITHM });
}

export async function signingKeyFromJwk(jwk: JWK): Promise<SigningKey> {
  if (!jwk.d) throw new Error('signing key JWK has no private part');
  const alg = jwk.alg ?? SIGNING_ALGORITHM;
  const kid = jwk.kid ?? randomUUID();
  const privateKey = (await importJWK({ ...jwk, alg }, alg)) as CryptoKey;
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, key_ops: _ops, ext: _ext, ...publicPart } = jwk;
  return { kid, alg, privateKey, privateJwk: { ...jwk, kid, alg }, publicJwk: { ...publicPart, kid, alg, use: 'sig' } };
}

export function jwksOf(...keys: SigningKey[]): JSONWebKeySet {
  return { keys: keys.map((k) => k.publicJwk) };
}

/** `<repo>/.local/keys`: this file lives at packages/identity/{src,dist}/keys.*. */
export function defaultDevKeysDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..', '.local/keys');
}

export const DEV_PRIVATE_KEY_FILE = 'dev-signing-key.private.jwk.json';
export const DEV_JWKS_FILE = 'jwks.json';

export interface DevKeys {
  signingKey: SigningKey;
  jwks: JSONWebKeySet;
  privateKeyPath: string;
  jwksPath: string;
  /** True when this call generated the key pair. */
  created: boolean;
}

/**
 * Development only: reads the dev key pair from dir, creating it on first use. The private key
 * file is created with O_EXCL so two processes starting together end up with one key.
 */
export async function loadOrCreateDevKeys(dir: string = defaultDevKeysDir()): Promise<DevKeys> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const privateKeyPath = path.join(dir, DEV_PRIVATE_KEY_FILE);
  const jwksPath = path.join(dir, DEV_JWKS_FILE);
  let created = false;
  let signingKey: SigningKey;
  try {
    signingKey = await signingKeyFromJwk(JSON.parse(await readFile(privateKeyPath, 'utf8')) as JWK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const fresh = await generateSigningKey();
    try {
      await writeFile(privateKeyPath, `${JSON.stringify(fresh.privateJwk, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
      signingKey = fresh;
      created = true;
    } catch (writeError) {
      if ((writeError as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError;
      // Another process won the race; use its key. It may still be writing, so retry briefly.
      signingKey = await readWhenComplete(privateKeyPath);
    }
  }
  const jwks = jwksOf(signingKey);
  // Written on every load (atomically) so jwks.json always matches the private key.
  const tmp = `${jwksPath}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, jwksPath);
  return { signingKey, jwks, privateKeyPath, jwksPath, created };
}

async function readWhenComplete(file: string): Promise<SigningKey> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await signingKeyFromJwk(JSON.parse(await readFile(file, 'utf8')) as JWK);
    } catch (error) {
      if (attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}
