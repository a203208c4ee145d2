// Signing keys of svc-auth: the current private key (signs) and optionally the previous key
// (published only, so tokens it signed stay valid through a rotation). Production reads both
// from files; development and test default to the shared dev key under .local/keys, which
// svc-tenders verifies against.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { JSONWebKeySet, JWK } from 'jose';
import { loadOrCreateDevKeys, signingKeyFromJwk, type SigningKey } from '@kvary/identity/keys';
import { createTokenVerifier, type TokenVerifier } from '@kvary/identity/verifier';
import type { AuthConfig } from '../config.js';

export interface AuthKeys {
  current: SigningKey;
  /** Public JWK of the key used before the last rotation, if any. */
  previous: JWK | null;
  /** Where the keys came from, for the start-up log line. */
  source: string;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'key_ops', 'ext'] as const;

/** The public half of a JWK (private or public input), which must carry a kid. */
export function publicJwkOf(jwk: JWK, file: string): JWK {
  if (typeof jwk.kid !== 'string' || jwk.kid === '') throw new Error(`${file}: the key has no "kid"`);
  if (jwk.kty === 'oct') throw new Error(`${file}: symmetric keys cannot be published`);
  const copy: Record<string, unknown> = { ...jwk };
  for (const member of PRIVATE_MEMBERS) delete copy[member];
  return { ...copy, use: 'sig' } as JWK;
}

async function readJwk(file: string): Promise<JWK> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as JWK;
  } catch (error) {
    throw new Error(`cannot read signing key ${file}: ${(error as Error).message}`, { cause: error });
  }
}

export async function loadAuthKeys(
  config: Pick<AuthConfig, 'AUTH_SIGNING_KEY_FILE' | 'AUTH_PREVIOUS_SIGNING_KEY_FILE' | 'KES_ENV'>,
): Promise<AuthKeys> {
  let current: SigningKey;
  let source: string;
  if (config.AUTH_SIGNING_KEY_FILE) {
    current = await signingKeyFromJwk(await readJwk(config.AUTH_SIGNING_KEY_FILE));
    source = config.AUTH_SIGNING_KEY_FILE;
  } else if (config.KES_ENV === 'production') {
    // Config validation already refuses this; kept as a guard for direct callers.
    throw new Error('AUTH_SIGNING_KEY_FILE is required when KES_ENV=production');
  } else {
    const dev = await loadOrCreateDevKeys();
    current = dev.signingKey;
    source = `${dev.privateKeyPath}${dev.created ? ' (created)' : ''}`;
  }
  let previous: JWK | null = null;
  if (config.AUTH_PREVIOUS_SIGNING_KEY_FILE) {
    previous = publicJwkOf(await readJwk(config.AUTH_PREVIOUS_SIGNING_KEY_FILE), config.AUTH_PREVIOUS_SIGNING_KEY_FILE);
    if (previous.kid === current.kid) previous = null;
  }
  return { current, previous, source };
}

export function publishedJwks(keys: AuthKeys): JSONWebKeySet {
  return { keys: keys.previous ? [keys.current.publicJwk, keys.previous] : [keys.current.publicJwk] };
}

/**
 * A verifier for this service's own tokens built with the shared createTokenVerifier (same
 * checks as every other service) over a private copy of the published JWKS, so /me needs no
 * HTTP round trip to itself.
 */
export async function createSelfVerifier(
  keys: AuthKeys,
  claims: { issuer: string; audience: string },
): Promise<{ verifier: TokenVerifier; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'svc-auth-jwks-'));
  const file = path.join(dir, 'jwks.json');
  await writeFile(file, JSON.stringify(publishedJwks(keys)), { mode: 0o600 });
  return {
    verifier: createTokenVerifier({ jwksUrl: pathToFileURL(file).href, issuer: claims.issuer, audience: claims.audience }),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
