// Signing access tokens (the auth service, tests and the dev-token CLI use this).
import { SignJWT } from 'jose';
import type { SigningKey } from './keys.js';
import type { Role } from './roles.js';

export interface AccessTokenClaims {
  sub: string;
  roles: readonly Role[];
  orgId?: string | null;
  issuer: string;
  audience: string;
  /** A jose time span ('15m', '1h') or seconds. Default '15m'. */
  expiresIn?: string | number;
}

export async function signAccessToken(key: SigningKey, claims: AccessTokenClaims): Promise<string> {
  const payload: Record<string, unknown> = { roles: [...claims.roles] };
  if (claims.orgId) payload.org_id = claims.orgId;
  const expiresIn = claims.expiresIn ?? '15m';
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(claims.issuer)
    .setAudience(claims.audience)
    .setIssuedAt()
    .setExpirationTime(typeof expiresIn === 'number' ? Math.floor(Date.now() / 1000) + expiresIn : expiresIn)
    .sign(key.privateKey);
}
