// Bearer-token authentication for the tender routes. No token means GUEST (read-only routes
// still answer); a token that is present but invalid is refused, never downgraded to GUEST.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, forbidden, unauthorized } from '@kvary/platform/errors';
import type { Role } from '@kvary/identity/roles';
import type { TokenVerifier, VerifiedIdentity } from '@kvary/identity/verifier';

declare module 'fastify' {
  interface FastifyRequest {
    identity: VerifiedIdentity | null;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i;

export function authenticate(verifier: TokenVerifier) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    if (header === undefined) return;
    try {
      const token = BEARER.exec(header)?.[1];
      if (!token) throw new AppError('INVALID_TOKEN', 'Authorization header must be "Bearer <token>"', { statusCode: 401 });
      request.identity = await verifier.verify(token);
    } catch (error) {
      if (error instanceof AppError && error.statusCode === 401) reply.header('www-authenticate', 'Bearer error="invalid_token"');
      throw error;
    }
  };
}

/** The caller's identity when it has one of the roles: 401 without a token, 403 otherwise. */
export function requireRole(request: FastifyRequest, ...roles: Role[]): VerifiedIdentity & { orgId: string } {
  const identity = request.identity;
  if (!identity) throw unauthorized('a bearer access token is required');
  if (!identity.roles.some((r) => roles.includes(r))) throw forbidden(`this action needs the role ${roles.join(' or ')}`);
  if (!identity.orgId) throw forbidden('this action needs an organisation (org_id) in the access token');
  return identity as VerifiedIdentity & { orgId: string };
}

/** preValidation hook: refuse the wrong caller before the body is even validated. */
export function onlyFor(...roles: Role[]) {
  return async (request: FastifyRequest): Promise<void> => {
    requireRole(request, ...roles);
  };
}
