// Access-token verification against a JWKS (http(s) URL, cached by jose, or a local file).
// Only asymmetric algorithms are accepted, so a token signed with public key material as an
// HMAC secret, or an unsigned one, can never pass.
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { AppError } from '@kvary/platform/errors';
import { isRole, type Role } from './roles.js';

export const ACCEPTED_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;

export interface TokenVerifierOptions {
  /** `https://.../jwks.json`, `http://...` (development) or `file:///abs/path/jwks.json`. */
  jwksUrl: string;
  issuer: string;
  audience: string;
  clockToleranceSeconds?: number;
}

export interface VerifiedIdentity {
  sub: string;
  /** Known roles only: a role this version does not know grants nothing. */
  roles: Role[];
  orgId: string | null;
  token: string;
}

export interface TokenVerifier {
  verify(token: string): Promise<VerifiedIdentity>;
}

const invalid = (message: string, cause?: unknown) => new AppError('INVALID_TOKEN', message, { statusCode: 401, cause });

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const getKey = keySetFor(options.jwksUrl);
  return {
    async verify(token) {
      let header: ReturnType<typeof decodeProtectedHeader>;
      try {
        header = decodeProtectedHeader(token);
      } catch (error) {
        throw invalid('access token is malformed', error);
      }
      if (typeof header.alg !== 'string' || !(ACCEPTED_ALGORITHMS as readonly string[]).includes(header.alg)) {
        throw invalid(`access token algorithm ${JSON.stringify(header.alg ?? null)} is not accepted`);
      }
      if (typeof header.kid !== 'string' || header.kid === '') throw invalid('access token has no key id (kid)');
      let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
      try {
        ({ payload } = await jwtVerify(token, getKey, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms: [...ACCEPTED_ALGORITHMS],
          requiredClaims: ['exp', 'sub'],
          clockTolerance: options.clockToleranceSeconds ?? 5,
        }));
      } catch (error) {
        throw mapJoseError(error);
      }
      const roles = payload.roles;
      if (roles !== undefined && !(Array.isArray(roles) && roles.every((r) => typeof r === 'string'))) {
        throw invalid('access token claim "roles" must be an array of strings');
      }
      const orgId = payload.org_id;
      if (orgId !== undefined && orgId !== null && typeof orgId !== 'string') {
        throw invalid('access token claim "org_id" must be a string');
      }
      return { sub: payload.sub as string, roles: (roles ?? []).filter(isRole), orgId: orgId || null, token };
    },
  };
}

function mapJoseError(error: unknown): AppError {
  const code = (error as { code?: string }).code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return invalid('access token has expired', error);
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return invalid(`access token claim "${(error as { claim?: string }).claim ?? '?'}" is not valid`, error);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return invalid('access token algorithm is not accepted', error);
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return invalid('access token key id (kid) is not known', error);
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalid('access token signature is not valid', error);
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return invalid('access token is malformed', error);
    default:
      // The key set could not be fetched or read: not the caller's fault.
      return new AppError('AUTH_UNAVAILABLE', 'access token keys are unavailable', { statusCode: 503, cause: error });
  }
}

function keySetFor(jwksUrl: string): JWTVerifyGetKey {
  const url = new URL(jwksUrl);
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    // jose caches the set and refetches (with a cooldown) when a token names an unknown kid.
    return createRemoteJWKSet(url, { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000, timeoutDuration: 5_000 });
  }
  if (url.protocol === 'file:') return fileKeySet(fileURLToPath(url));
  throw new Error(`unsupported JWKS URL ${JSON.stringify(jwksUrl)}: use http(s):// or file://`);
}

/** Reads the JWKS file again whenever it changes on disk, so key rotation needs no restart. */
function fileKeySet(file: string): JWTVerifyGetKey {
  let cached: { mtimeMs: number; size: number; getKey: JWTVerifyGetKey } | undefined;
  return async (header, token) => {
    const info = await stat(file);
    if (!cached || cached.mtimeMs !== info.mtimeMs || cached.size !== info.size) {
      const jwks = JSON.parse(await readFile(file, 'utf8')) as JSONWebKeySet;
      cached = { mtimeMs: info.mtimeMs, size: info.size, getKey: createLocalJWKSet(jwks) };
    }
    return cached.getKey(header, token);
  };
}
