// What every successful login does, whatever the method: end the session the browser came
// with (no session fixation), start a new one, set the cookie, mint an access token.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Queryable } from '@kvary/platform/postgres';
import { signAccessToken } from '@kvary/identity/tokens';
import type { AuthConfig } from '../config.js';
import { SESSION_COOKIE, readCookie, serializeCookie } from './cookies.js';
import type { AuthKeys } from './keys.js';
import { createSession, revokeSession } from './sessions.js';
import { toPublicUser, type PublicUser, type UserRow } from './users.js';

export type SessionConfig = Pick<AuthConfig, 'AUTH_ISSUER' | 'AUTH_AUDIENCE' | 'ACCESS_TOKEN_TTL' | 'SESSION_TTL' | 'secureCookies'>;

export interface TokenResponse {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  user: PublicUser;
}

export type LoginMethod = 'password' | 'oidc';
export type LoginOutcome = 'success' | 'invalid_credentials' | 'throttled' | 'rejected' | 'state_invalid' | 'provider_unavailable';
/** The kes_auth_logins_total counter, narrowed to the labels this service uses. */
export interface LoginCounter {
  inc(labels: { method: LoginMethod; outcome: LoginOutcome }): void;
}

export async function issueAccessToken(keys: AuthKeys, config: SessionConfig, user: UserRow): Promise<TokenResponse> {
  const publicUser = toPublicUser(user);
  const accessToken = await signAccessToken(keys.current, {
    sub: user.id,
    roles: publicUser.roles,
    orgId: user.org_id,
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
    expiresIn: config.ACCESS_TOKEN_TTL,
  });
  return { accessToken, tokenType: 'Bearer', expiresIn: config.ACCESS_TOKEN_TTL, user: publicUser };
}

export function sessionCookieOf(request: FastifyRequest): string | undefined {
  return readCookie(request.headers.cookie, SESSION_COOKIE);
}

export function clearSessionCookie(reply: FastifyReply, config: SessionConfig): void {
  reply.header('set-cookie', serializeCookie(SESSION_COOKIE, '', { maxAgeSeconds: 0, path: '/', secure: config.secureCookies }));
}

/**
 * Revokes the request's session and creates a new one. Returns the response body and the
 * Set-Cookie value; the caller sets the cookie only after its transaction committed, so a
 * failed login never carries a session cookie.
 */
export async function startSession(
  db: Queryable,
  deps: { keys: AuthKeys; config: SessionConfig },
  request: FastifyRequest,
  user: UserRow,
  method: LoginMethod,
): Promise<{ body: TokenResponse; cookie: string }> {
  await revokeSession(db, sessionCookieOf(request));
  const { token } = await createSession(db, {
    userId: user.id,
    method,
    ttlSeconds: deps.config.SESSION_TTL,
    ip: request.ip,
    userAgent: request.headers['user-agent'] ?? null,
  });
  const body = await issueAccessToken(deps.keys, deps.config, user);
  const cookie = serializeCookie(SESSION_COOKIE, token, { maxAgeSeconds: deps.config.SESSION_TTL, path: '/', secure: deps.config.secureCookies });
  return { body, cookie };
}

export function setSessionCookie(reply: FastifyReply, cookie: string): void {
  reply.header('set-cookie', cookie);
  reply.header('cache-control', 'no-store');
}
