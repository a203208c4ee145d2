// What the gateway learns about a request before it is proxied, kept on the request.
import type { VerifiedIdentity } from '@kvary/identity/verifier';
import type { Locale } from './locale.js';
import type { RoutePermission } from './permissions.js';

export interface GatewayRequestState {
  locale: Locale;
  /** The traceparent forwarded upstream and returned to the caller (the gateway's span). */
  traceparent: string;
  /** The table row of the route; null for refused requests. */
  permission: RoutePermission | null;
  identity: VerifiedIdentity | null;
  /** How the identity was established. */
  authenticatedBy: 'bearer' | 'session' | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    gateway: GatewayRequestState;
  }
}
