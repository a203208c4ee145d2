// /api/v1/auth: password login, logout, me, token. Sessions are server-side (cookie); access
// tokens are short-lived JWTs minted from a session.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError, unauthorized } from '@kvary/platform/errors';
import { withTransaction, type Pool } from '@kvary/platform/postgres';
import type { TokenVerifier } from '@kvary/identity/verifier';
import type { AuthConfig } from '../config.js';
import type { AuthKeys } from './keys.js';
import type { PasswordVerifier } from './passwords.js';
import { clearSessionCookie, issueAccessToken, sessionCookieOf, setSessionCookie, startSession, type LoginCounter } from './session-login.js';
import { findSessionUser, revokeSession } from './sessions.js';
import { clearAccountFailures, currentLockout, recordFailure, type ThrottleLimits } from './throttle.js';
import { findUserByEmail, findUserById, toPublicUser, updatePasswordHash, type UserRow } from './users.js';

export interface AuthRoutesOptions {
  pool: Pool;
  keys: AuthKeys;
  verifier: TokenVerifier;
  passwords: PasswordVerifier;
  config: AuthConfig;
  logins: LoginCounter;
}

const loginBody = z
  .object({
    email: z.string().trim().min(3).max(254),
    password: z.string().min(1).max(1024),
  })
  .strict();

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i;

const invalidCredentials = () => new AppError('INVALID_CREDENTIALS', 'The email or password is not correct', { statusCode: 401 });

export const authRoutes: FastifyPluginAsyncZod<AuthRoutesOptions> = async (app, { pool, keys, verifier, passwords, config, logins }) => {
  const limits: ThrottleLimits = {
    maxAccountFailures: config.LOGIN_MAX_ACCOUNT_FAILURES,
    maxIpFailures: config.LOGIN_MAX_IP_FAILURES,
    windowSeconds: config.LOGIN_FAILURE_WINDOW,
  };

  app.post('/login', { schema: { body: loginBody } }, async (request, reply) => {
    const email = request.body.email.toLowerCase();
    const ip = request.ip;
    // Checked before any password work, so a locked account costs no scrypt.
    const lockout = await currentLockout(pool, limits, email, ip);
    if (lockout) {
      logins.inc({ method: 'password', outcome: 'throttled' });
      reply.header('retry-after', String(lockout.retryAfterSeconds));
      throw new AppError(
        'TOO_MANY_ATTEMPTS',
        lockout.scope === 'account'
          ? `Too many failed logins for this account; try again in ${lockout.retryAfterSeconds} seconds`
          : `Too many failed logins from this address; try again in ${lockout.retryAfterSeconds} seconds`,
        { statusCode: 429, details: { retryAfterSeconds: lockout.retryAfterSeconds } },
      );
    }
    const user = await findUserByEmail(pool, email);
    // Always one scrypt, also for unknown emails and password-less accounts (timing).
    const check = await passwords.verify(request.body.password, user?.password_hash);
    if (!user || !check.ok || user.disabled) {
      await recordFailure(pool, limits, email, ip);
      logins.inc({ method: 'password', outcome: 'invalid_credentials' });
      request.log.info({ email, ip }, 'password login failed');
      throw invalidCredentials();
    }
    const { body, cookie } = await withTransaction(pool, async (tx) => {
      await clearAccountFailures(tx, email);
      return startSession(tx, { keys, config }, request, user, 'password');
    });
    setSessionCookie(reply, cookie);
    if (check.needsRehash) {
      // The cost changed since this hash was made: upgrade it now that we know the password.
      await updatePasswordHash(pool, user.id, await passwords.hash(request.body.password));
    }
    logins.inc({ method: 'password', outcome: 'success' });
    request.log.info({ userId: user.id }, 'password login');
    return body;
  });

  app.post('/logout', async (request, reply) => {
    await revokeSession(pool, sessionCookieOf(request));
    clearSessionCookie(reply, config);
    return reply.status(204).send();
  });

  app.get('/me', async (request, reply) => {
    const user = await authenticatedUser(request, reply);
    const publicUser = toPublicUser(user);
    reply.header('cache-control', 'no-store');
    return { user: publicUser, roles: publicUser.roles };
  });

  // The gateway turns a session cookie into a bearer token here (and caches it until expiry).
  app.post('/token', async (request, reply) => {
    const user = await findSessionUser(pool, sessionCookieOf(request));
    if (!user) throw unauthorized('A valid session is required');
    reply.header('cache-control', 'no-store');
    return issueAccessToken(keys, config, user);
  });

  /** Bearer token when an Authorization header is present, else the session cookie. */
  async function authenticatedUser(request: FastifyRequest, reply: FastifyReply): Promise<UserRow> {
    const header = request.headers.authorization;
    if (header !== undefined) {
      const token = BEARER.exec(header)?.[1];
      let sub: string;
      try {
        if (!token) throw new AppError('INVALID_TOKEN', 'Authorization header must be "Bearer <token>"', { statusCode: 401 });
        ({ sub } = await verifier.verify(token));
      } catch (error) {
        if (error instanceof AppError && error.statusCode === 401) {
          reply.header('www-authenticate', 'Bearer error="invalid_token"');
          throw unauthorized(error.message);
        }
        throw error;
      }
      const user = await findUserById(pool, sub);
      if (!user || user.disabled) throw unauthorized('The user of this token no longer exists or is disabled');
      return user;
    }
    const user = await findSessionUser(pool, sessionCookieOf(request));
    if (!user) throw unauthorized('A valid session or bearer token is required');
    return user;
  }
};
