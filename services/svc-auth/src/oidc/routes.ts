// /api/v1/auth/oidc: authorization code + PKCE login against any OpenID provider. The state is
// bound to the browser twice: an httpOnly cookie must carry it, and the server-side row is
// single use. Every refusal answers JSON and sets no session cookie.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '@kvary/platform/errors';
import { withTransaction, type Pool, type PoolClient } from '@kvary/platform/postgres';
import { isRole, type Role } from '@kvary/identity/roles';
import type { AuthConfig, OidcSettings } from '../config.js';
import { OIDC_STATE_COOKIE, readCookie, serializeCookie } from '../auth/cookies.js';
import type { AuthKeys } from '../auth/keys.js';
import { setSessionCookie, startSession, type LoginCounter } from '../auth/session-login.js';
import { findUserByEmail, findUserByIdentity, insertUser, linkIdentity, type UserRow } from '../auth/users.js';
import type { OidcClaims, OidcClient } from './client.js';
import { OIDC_STATE_TTL_SECONDS, consumeLoginState, saveLoginState } from './states.js';

export interface OidcRoutesOptions {
  pool: Pool;
  keys: AuthKeys;
  config: AuthConfig;
  oidc: OidcClient | null;
  logins: LoginCounter;
}

/** Roles an external provider may grant to a new user; privileged roles are granted by admins. */
const SELF_SERVICE_ROLES: readonly Role[] = ['SUPPLIER'];
const ROLES_CLAIM = 'kvary_roles';
const COOKIE_PATH = '/api/v1/auth/oidc';

// Providers add their own parameters (iss, session_state...): the known ones are checked,
// the rest passes through to openid-client, which validates the response as a whole.
const callbackQuery = z
  .object({
    state: z.string().max(512).optional(),
    code: z.string().max(4096).optional(),
    error: z.string().max(256).optional(),
    error_description: z.string().max(2048).optional(),
  })
  .passthrough();

const stateInvalid = (message: string) => new AppError('OIDC_STATE_INVALID', message, { statusCode: 400 });

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export const oidcRoutes: FastifyPluginAsyncZod<OidcRoutesOptions> = async (app, { pool, keys, config, oidc, logins }) => {
  const requireOidc = (): OidcClient => {
    if (!oidc) throw new AppError('OIDC_NOT_CONFIGURED', 'OIDC login is not configured (OIDC_ISSUER_URL)', { statusCode: 404 });
    return oidc;
  };
  const stateCookie = (value: string, maxAgeSeconds: number) =>
    serializeCookie(OIDC_STATE_COOKIE, value, { maxAgeSeconds, path: COOKIE_PATH, secure: config.secureCookies });

  app.get('/login', async (_request, reply) => {
    const request = await requireOidc().authorizationRequest();
    await saveLoginState(pool, request);
    reply.header('set-cookie', stateCookie(request.state, OIDC_STATE_TTL_SECONDS));
    reply.header('cache-control', 'no-store');
    return reply.redirect(request.url.href, 302);
  });

  app.get('/callback', { schema: { querystring: callbackQuery } }, async (request, reply) => {
    const client = requireOidc();
    // The state cookie is spent whatever happens next.
    reply.header('set-cookie', stateCookie('', 0));
    reply.header('cache-control', 'no-store');
    try {
      const { state } = request.query;
      const cookieState = readCookie(request.headers.cookie, OIDC_STATE_COOKIE);
      if (!state) throw stateInvalid('The login response has no state');
      if (!cookieState || !sameString(cookieState, state)) {
        throw stateInvalid('The login response does not belong to this browser (state mismatch); start the login again');
      }
      const pending = await consumeLoginState(pool, state);
      if (!pending) throw stateInvalid('The login state is unknown, expired or already used; start the login again');
      if (request.query.error) {
        throw new AppError('OIDC_LOGIN_FAILED', `The identity provider refused the login (${request.query.error})`, { statusCode: 400 });
      }
      const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
      const claims = await client.completeLogin(query, pending);
      const { body, cookie } = await withTransaction(pool, async (tx) => {
        const user = await userForIdentity(tx, claims);
        return startSession(tx, { keys, config }, request, user, 'oidc');
      });
      setSessionCookie(reply, cookie);
      logins.inc({ method: 'oidc', outcome: 'success' });
      request.log.info({ userId: body.user.id, issuer: claims.issuer }, 'oidc login');
      return respond(reply, request.headers.accept, body, client.settings);
    } catch (error) {
      logins.inc({ method: 'oidc', outcome: outcomeOf(error) });
      throw error;
    }
  });
};

function outcomeOf(error: unknown) {
  const code = error instanceof AppError ? error.code : '';
  if (code === 'OIDC_STATE_INVALID') return 'state_invalid' as const;
  if (code === 'OIDC_PROVIDER_UNAVAILABLE') return 'provider_unavailable' as const;
  return 'rejected' as const;
}

function respond(reply: FastifyReply, accept: string | undefined, body: unknown, settings: OidcSettings) {
  if (accept?.includes('application/json')) return body;
  return reply.redirect(settings.postLoginRedirect, 302);
}

/**
 * The user for a verified OIDC identity: the one already linked to (issuer, sub); else the
 * user with the same email when the provider verified it; else a new user with no roles
 * (or SUPPLIER when the provider's kvary_roles claim asks for it).
 */
async function userForIdentity(tx: PoolClient, claims: OidcClaims): Promise<UserRow> {
  // Two first logins of one identity at once: the second waits and then finds the link.
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`oidc|${claims.issuer}|${claims.subject}`]);
  const linked = await findUserByIdentity(tx, claims.issuer, claims.subject);
  if (linked) return usable(linked);
  if (!claims.email) {
    throw new AppError('OIDC_EMAIL_REQUIRED', 'The identity provider did not share an email address (scope "email")', { statusCode: 401 });
  }
  const existing = await findUserByEmail(tx, claims.email);
  if (existing && !claims.emailVerified) {
    throw new AppError('OIDC_EMAIL_NOT_VERIFIED', 'An account with this email exists, but the identity provider has not verified the email', {
      statusCode: 409,
    });
  }
  const requested = claims.claims[ROLES_CLAIM];
  const roles = Array.isArray(requested) ? SELF_SERVICE_ROLES.filter((r) => requested.includes(r) && isRole(r)) : [];
  const user =
    existing ??
    (await insertUser(tx, {
      email: claims.email,
      displayName: claims.name?.slice(0, 200) || claims.email,
      roles,
      orgId: null,
      passwordHash: null,
    }));
  await linkIdentity(tx, { issuer: claims.issuer, subject: claims.subject, userId: user.id, email: claims.email });
  return usable(user);
}

function usable(user: UserRow): UserRow {
  if (user.disabled) throw new AppError('ACCOUNT_DISABLED', 'This account is disabled', { statusCode: 403 });
  return user;
}
