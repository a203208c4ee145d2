// Who is calling: a bearer token verified here, or the httpOnly session cookie exchanged at
// svc-auth for an access token (cached per session). Also CSRF for cookie-authenticated
// writes, and the identity headers a client must never be able to inject upstream.
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { AppError } from '@kvary/platform/errors';
import type { Logger } from '@kvary/platform/logging';
import { createTokenVerifier, type TokenVerifier, type VerifiedIdentity } from '@kvary/identity/verifier';

export const SESSION_COOKIE = 'kes_session';

/**
 * Headers that other gateways, proxies and frameworks use to carry an identity. A client could
 * send any of them hoping a service trusts it, so they never reach a service. Services only
 * trust the bearer JWT they verify themselves.
 */
export const STRIPPED_IDENTITY_HEADERS = [
  'x-user',
  'x-user-id',
  'x-user-name',
  'x-user-email',
  'x-user-role',
  'x-user-roles',
  'x-roles',
  'x-role',
  'x-org',
  'x-org-id',
  'x-organisation-id',
  'x-organization-id',
  'x-tenant-id',
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-groups',
  'x-forwarded-preferred-username',
  'x-forwarded-access-token',
  'x-remote-user',
  'remote-user',
  'x-authenticated-user',
  'x-authenticated-userid',
  'x-authenticated-scope',
  'x-identity',
  'x-userinfo',
  'x-jwt-payload',
  'x-jwt-claims',
  'x-principal',
  'x-client-roles',
] as const;

/** Every header starting with one of these is stripped too. */
export const STRIPPED_IDENTITY_PREFIXES = ['x-kes-identity', 'x-auth-', 'x-user-', 'x-consumer-'] as const;

const strippedNames = new Set<string>(STRIPPED_IDENTITY_HEADERS);

export function isIdentityHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return strippedNames.has(lower) || STRIPPED_IDENTITY_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

/** A copy of the headers without any client-supplied identity header. */
export function withoutIdentityHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!isIdentityHeader(name)) out[name] = value;
  return out;
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i;

/** The token of an `Authorization: Bearer` header; any other Authorization value is refused. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const token = BEARER.exec(header.trim())?.[1];
  if (!token) throw new AppError('INVALID_TOKEN', 'Authorization header must be "Bearer <token>"', { statusCode: 401 });
  return token;
}

/**
 * Verifies with AUTH_JWKS_URL; in development, when that key set cannot be fetched at all (the
 * auth service is not running), tries the fallback (the dev JWKS file) so dev-token tokens work.
 * A token the primary set rejects is never retried against the fallback.
 */
export function createGatewayVerifier(options: {
  jwksUrl: string;
  fallbackJwksUrl?: string;
  issuer: string;
  audience: string;
  logger?: Logger;
}): TokenVerifier {
  const primary = createTokenVerifier({ jwksUrl: options.jwksUrl, issuer: options.issuer, audience: options.audience });
  if (!options.fallbackJwksUrl) return primary;
  const fallback = createTokenVerifier({ jwksUrl: options.fallbackJwksUrl, issuer: options.issuer, audience: options.audience });
  let warnedAt = 0;
  return {
    async verify(token) {
      try {
        return await primary.verify(token);
      } catch (error) {
        if (!(error instanceof AppError) || error.code !== 'AUTH_UNAVAILABLE') throw error;
        if (Date.now() - warnedAt > 60_000) {
          warnedAt = Date.now();
          options.logger?.warn({ jwksUrl: options.jwksUrl, fallback: options.fallbackJwksUrl }, 'JWKS unreachable; verifying with the development key set');
        }
        return fallback.verify(token);
      }
    },
  };
}

export class UpstreamFailure extends Error {
  constructor(
    readonly kind: 'unavailable' | 'timeout',
    cause: unknown,
  ) {
    super(`upstream ${kind}`, { cause });
    this.name = 'UpstreamFailure';
  }
}

export interface SessionExchangeOptions {
  authUrl: string;
  verifier: TokenVerifier;
  fetch: typeof fetch;
  timeoutMs: number;
  maxEntries: number;
  /** Tokens are dropped this long before they expire, so a forwarded token is never stale. */
  refreshBeforeMs?: number;
  now?: () => number;
}

export interface SessionExchange {
  /** The session's identity, or null when svc-auth does not know the session (anonymous). */
  identityFor(sessionCookie: string, context: { requestId: string; traceparent: string }): Promise<VerifiedIdentity | null>;
  forget(sessionCookie: string): void;
  readonly size: number;
}

interface CacheEntry {
  identity: VerifiedIdentity;
  expiresAt: number;
}

/**
 * POST {AUTH_URL}/api/v1/auth/token with the session cookie -> {accessToken, expiresIn}. The
 * token is verified like any bearer token and cached under a hash of the cookie (the cookie
 * itself is a credential and is never kept), until shortly before it expires. Concurrent
 * requests of one session share one exchange.
 */
export function createSessionExchange(options: SessionExchangeOptions): SessionExchange {
  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<VerifiedIdentity | null>>();
  const now = options.now ?? Date.now;
  const refreshBeforeMs = options.refreshBeforeMs ?? 30_000;
  const keyOf = (cookie: string) => createHash('sha256').update(cookie).digest('base64url');

  async function exchange(cookie: string, key: string, context: { requestId: string; traceparent: string }) {
    let response: Response;
    try {
      response = await options.fetch(`${options.authUrl}/api/v1/auth/token`, {
        method: 'POST',
        headers: {
          cookie: `${SESSION_COOKIE}=${encodeURIComponent(cookie)}`,
          accept: 'application/json',
          'x-request-id': context.requestId,
          traceparent: context.traceparent,
        },
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    } catch (error) {
      const name = (error as Error).name;
      throw new UpstreamFailure(name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'unavailable', error);
    }
    // 401/403/404: the session is unknown or expired. The caller is simply not signed in.
    if (response.status === 401 || response.status === 403 || response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new UpstreamFailure('unavailable', new Error(`POST /api/v1/auth/token answered ${response.status}`));
    }
    const body = (await response.json()) as { accessToken?: unknown; expiresIn?: unknown };
    if (typeof body.accessToken !== 'string') {
      throw new UpstreamFailure('unavailable', new Error('POST /api/v1/auth/token answered without accessToken'));
    }
    const identity = await options.verifier.verify(body.accessToken);
    const tokenExp = tokenExpiry(body.accessToken);
    const declared = typeof body.expiresIn === 'number' ? now() + body.expiresIn * 1000 : Number.POSITIVE_INFINITY;
    const expiresAt = Math.min(declared, tokenExp ?? Number.POSITIVE_INFINITY) - refreshBeforeMs;
    if (Number.isFinite(expiresAt) && expiresAt > now()) {
      if (cache.size >= options.maxEntries) evict();
      cache.set(key, { identity, expiresAt });
    }
    return identity;
  }

  function evict() {
    const t = now();
    for (const [key, entry] of cache) if (entry.expiresAt <= t) cache.delete(key);
    // Still full: drop the oldest insertions (Map keeps insertion order).
    for (const key of cache.keys()) {
      if (cache.size < options.maxEntries) break;
      cache.delete(key);
    }
  }

  return {
    async identityFor(cookie, context) {
      const key = keyOf(cookie);
      const hit = cache.get(key);
      if (hit && hit.expiresAt > now()) return hit.identity;
      if (hit) cache.delete(key);
      const pending = inFlight.get(key);
      if (pending) return pending;
      const promise = exchange(cookie, key, context).finally(() => inFlight.delete(key));
      inFlight.set(key, promise);
      return promise;
    },
    forget(cookie) {
      cache.delete(keyOf(cookie));
    },
    get size() {
      return cache.size;
    },
  };
}

/** `exp` of a JWT in ms (already verified by the caller; this only reads it). */
function tokenExpiry(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The Origin header, or the origin of the Referer when a browser sent no Origin. */
export function requestOrigin(headers: IncomingHttpHeaders, options: { refererFallback: boolean }): string | undefined {
  const origin = headers.origin;
  if (typeof origin === 'string' && origin !== '') return origin;
  if (!options.refererFallback || typeof headers.referer !== 'string') return undefined;
  try {
    return new URL(headers.referer).origin;
  } catch {
    return undefined;
  }
}
