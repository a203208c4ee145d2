// The gateway's one route-permission table. A request is proxied (or served locally) only when
// a row matches its method and path; everything else is refused before any upstream sees it.
// Row-level rules (tender visibility, buyer organisation) stay in the services.
import type { Role } from '@kvary/identity/roles';

export type Upstream = 'svc-auth' | 'svc-tenders' | 'gateway';
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** 'ANY': everyone, GUEST included; 'AUTHENTICATED': any signed-in caller; else one of the roles. */
export type Access = 'ANY' | 'AUTHENTICATED' | readonly Role[];

export interface RoutePermission {
  method: HttpMethod;
  /** Fastify route syntax: static segments and `:param` segments. */
  path: string;
  roles: Access;
  upstream: Upstream;
  /**
   * Login flows start without a session, so cookie CSRF rules do not apply; an Origin header
   * that is present must still be an allowed one.
   */
  csrf?: 'origin-if-present';
}

const PO = ['PROCUREMENT_OFFICER'] as const satisfies readonly Role[];

export const ROUTE_PERMISSIONS: readonly RoutePermission[] = [
  // svc-auth: sessions, tokens, OIDC and the public keys. It checks sessions itself.
  { method: 'POST', path: '/api/v1/auth/login', roles: 'ANY', upstream: 'svc-auth', csrf: 'origin-if-present' },
  { method: 'POST', path: '/api/v1/auth/logout', roles: 'ANY', upstream: 'svc-auth' },
  { method: 'GET', path: '/api/v1/auth/me', roles: 'ANY', upstream: 'svc-auth' },
  { method: 'POST', path: '/api/v1/auth/token', roles: 'ANY', upstream: 'svc-auth' },
  { method: 'GET', path: '/api/v1/auth/oidc/login', roles: 'ANY', upstream: 'svc-auth', csrf: 'origin-if-present' },
  { method: 'GET', path: '/api/v1/auth/oidc/callback', roles: 'ANY', upstream: 'svc-auth', csrf: 'origin-if-present' },
  { method: 'GET', path: '/.well-known/jwks.json', roles: 'ANY', upstream: 'svc-auth' },

  // svc-tenders: reads are open (the service filters rows by visibility), commands need roles.
  { method: 'GET', path: '/api/v1/tenders', roles: 'ANY', upstream: 'svc-tenders' },
  { method: 'GET', path: '/api/v1/tenders/:id', roles: 'ANY', upstream: 'svc-tenders' },
  { method: 'POST', path: '/api/v1/tenders', roles: PO, upstream: 'svc-tenders' },
  { method: 'PATCH', path: '/api/v1/tenders/:id', roles: PO, upstream: 'svc-tenders' },
  { method: 'POST', path: '/api/v1/tenders/:id/publish', roles: PO, upstream: 'svc-tenders' },
  { method: 'POST', path: '/api/v1/tenders/:id/close', roles: PO, upstream: 'svc-tenders' },
  { method: 'POST', path: '/api/v1/tenders/:id/award', roles: PO, upstream: 'svc-tenders' },
  { method: 'POST', path: '/api/v1/tenders/:id/cancel', roles: PO, upstream: 'svc-tenders' },
  { method: 'POST', path: '/api/v1/tenders/:id/bids', roles: ['SUPPLIER'], upstream: 'svc-tenders' },
  { method: 'GET', path: '/api/v1/workspace', roles: 'AUTHENTICATED', upstream: 'svc-tenders' },

  // The gateway itself: request context, the read-only documentation portal, operations.
  { method: 'GET', path: '/api/v1/context', roles: 'ANY', upstream: 'gateway' },
  { method: 'GET', path: '/api/v1/docs', roles: 'ANY', upstream: 'gateway' },
  { method: 'GET', path: '/api/v1/docs/:id', roles: 'ANY', upstream: 'gateway' },
  { method: 'GET', path: '/health', roles: 'ANY', upstream: 'gateway' },
  { method: 'GET', path: '/metrics', roles: 'ANY', upstream: 'gateway' },
];

/** The documentation portal's prefix: every method but GET there answers DOCS_READ_ONLY. */
export const DOCS_PREFIX = '/api/v1/docs';

const byKey = new Map(ROUTE_PERMISSIONS.map((row) => [`${row.method} ${row.path}`, row]));

/**
 * The row of a registered route (Fastify's route url, not the request url). HEAD is answered
 * like GET, as HTTP requires.
 */
export function permissionFor(method: string, routePath: string): RoutePermission | undefined {
  return byKey.get(`${method === 'HEAD' ? 'GET' : method} ${routePath}`);
}

const patterns = ROUTE_PERMISSIONS.map((row) => ({
  row,
  regex: new RegExp(`^${row.path.split('/').map((s) => (s.startsWith(':') ? '[^/]+' : escapeRegex(s))).join('/')}$`),
}));

function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Rows whose path pattern matches a request path (any method): decides 404 versus 405. */
export function rowsForPath(requestPath: string): RoutePermission[] {
  return patterns.filter((p) => p.regex.test(requestPath)).map((p) => p.row);
}

export interface Caller {
  roles: readonly Role[];
}

export type Decision = 'allow' | 'unauthenticated' | 'forbidden';

/** The table's verdict for a caller (null = anonymous, i.e. GUEST). */
export function decide(row: RoutePermission, caller: Caller | null): Decision {
  if (row.roles === 'ANY') return 'allow';
  if (!caller) return 'unauthenticated';
  if (row.roles === 'AUTHENTICATED') return 'allow';
  const needed = row.roles;
  return caller.roles.some((role) => needed.includes(role)) ? 'allow' : 'forbidden';
}

/** The rows a caller may call, for /api/v1/context. */
export function permittedRoutes(caller: Caller | null): { method: HttpMethod; path: string }[] {
  return ROUTE_PERMISSIONS.filter((row) => decide(row, caller) === 'allow').map(({ method, path }) => ({ method, path }));
}
