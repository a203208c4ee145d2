// The gateway HTTP app (never listens; main.ts does). Every request is matched against the
// permission table (permissions.ts): refused requests never reach a service; allowed ones get
// a verified identity, CSRF checks, locale and trace context, then are proxied or served here.
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { FastifyError, FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '@kvary/platform/errors';
import { createHttpApp, toErrorResponse, type HttpApp } from '@kvary/platform/http';
import type { Logger } from '@kvary/platform/logging';
import { counter, createMetricsRegistry, histogram, type Registry } from '@kvary/platform/metrics';
import type { TokenVerifier } from '@kvary/identity/verifier';
import type { GatewayConfig } from './config.js';
import { contextHandler } from './context.js';
import {
  SESSION_COOKIE,
  UNSAFE_METHODS,
  UpstreamFailure,
  bearerToken,
  createGatewayVerifier,
  createSessionExchange,
  requestOrigin,
  type SessionExchange,
} from './identity.js';
import { GatewayError, gatewayError, isGatewayErrorCode, message } from './i18n.js';
import { DEFAULT_LOCALE, LOCALE_COOKIE, resolveLocale } from './locale.js';
import { DOCS_PREFIX, ROUTE_PERMISSIONS, decide, permissionFor, rowsForPath, type RoutePermission } from './permissions.js';
import { proxyTo, registerProxy, upstreamFailure } from './proxy.js';
import type { GatewayRequestState } from './request-state.js';
import { gatewayTraceparent } from './tracing.js';

export const SERVICE_NAME = 'gateway';

export interface AppDeps {
  config: GatewayConfig;
  logger: Logger;
  /** Default: createTokenVerifier on AUTH_JWKS_URL (with the development fallback). */
  verifier?: TokenVerifier;
  /** Used for health probes, the session-token exchange and the workspace projection. */
  fetch?: typeof fetch;
  metrics?: Registry;
  /**
   * The read-only documentation portal (src/docs-portal.ts): a plugin registering
   * GET /api/v1/docs and GET /api/v1/docs/:id. Until it exists those routes answer 501.
   */
  docsPortal?: FastifyPluginAsync;
}

export function buildApp(deps: AppDeps): HttpApp {
  const { config, logger } = deps;
  const fetchFn = deps.fetch ?? globalThis.fetch;
  const metrics = deps.metrics ?? createMetricsRegistry({ service: SERVICE_NAME });
  const verifier =
    deps.verifier ??
    createGatewayVerifier({
      jwksUrl: config.AUTH_JWKS_URL,
      fallbackJwksUrl: config.AUTH_JWKS_FALLBACK_URL,
      issuer: config.AUTH_ISSUER,
      audience: config.AUTH_AUDIENCE,
      logger,
    });
  const sessions = createSessionExchange({
    authUrl: config.AUTH_URL,
    verifier,
    fetch: fetchFn,
    timeoutMs: config.GATEWAY_UPSTREAM_TIMEOUT_MS,
    maxEntries: config.GATEWAY_TOKEN_CACHE_MAX,
  });

  const probe = async (baseUrl: string) => {
    const response = await fetchFn(`${baseUrl}/health`, { signal: AbortSignal.timeout(config.GATEWAY_HEALTH_TIMEOUT_MS) });
    const body = (await response.json().catch(() => null)) as { ok?: unknown } | null;
    if (!response.ok || body?.ok !== true) throw new Error(`/health answered ${response.status}`);
  };

  const app = createHttpApp({
    service: SERVICE_NAME,
    logger,
    metrics,
    bodyLimitBytes: config.GATEWAY_BODY_LIMIT_BYTES,
    trustProxy: config.GATEWAY_TRUST_PROXY,
    healthTimeoutMs: config.GATEWAY_HEALTH_TIMEOUT_MS + 500,
    healthChecks: { 'svc-auth': () => probe(config.AUTH_URL), 'svc-tenders': () => probe(config.TENDERS_URL) },
  });

  void app.register(cookie);
  void app.register(helmet, {
    // JSON only: nothing may be framed, scripted or embedded.
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    hsts: config.KES_ENV === 'production',
  });
  void app.register(fp(edge, { name: 'gateway-edge' }), { metrics });
  void app.register(routes, { config, metrics, verifier, sessions, fetch: fetchFn, docsPortal: deps.docsPortal });
  return app;
}

/** For every request (also /health and /metrics): locale, trace context, request metrics. */
const edge: FastifyPluginAsync<{ metrics: Registry }> = async (app, { metrics }) => {
  const requests = counter(metrics, {
    name: 'kes_gateway_requests_total',
    help: 'Requests answered by the gateway, by permission-table route (unmatched: refused), method and status',
    labelNames: ['route', 'method', 'status'],
  });
  app.decorateRequest('gateway', null as unknown as GatewayRequestState);

  app.addHook('onRequest', async (request, reply) => {
    const { locale } = resolveLocale({
      query: request.query as Record<string, unknown>,
      cookie: request.cookies[LOCALE_COOKIE],
      acceptLanguage: request.headers['accept-language'],
    });
    request.gateway = {
      locale,
      traceparent: gatewayTraceparent(request.headers.traceparent),
      permission: request.is404 ? null : (permissionFor(request.method, request.routeOptions.url ?? '') ?? null),
      identity: null,
      authenticatedBy: null,
    };
    reply.header('content-language', locale);
    reply.header('traceparent', request.gateway.traceparent);
  });

  // The platform's /health names its checks `checks`; the gateway's checks are services.
  app.addHook('preSerialization', async (request, _reply, payload) => {
    if (request.routeOptions.url !== '/health' || typeof payload !== 'object' || payload === null) return payload;
    const { checks, ...rest } = payload as { checks?: unknown };
    return { ...rest, services: checks };
  });

  app.addHook('onResponse', async (request, reply) => {
    requests.inc({ route: request.gateway?.permission?.path ?? 'unmatched', method: request.method, status: String(reply.statusCode) });
  });
};

interface RoutesOptions {
  config: GatewayConfig;
  metrics: Registry;
  verifier: TokenVerifier;
  sessions: SessionExchange;
  fetch: typeof fetch;
  docsPortal: FastifyPluginAsync | undefined;
}

/** Everything behind the permission table, in its own scope (own error handler, rate limit). */
const routes: FastifyPluginAsync<RoutesOptions> = async (scope, options) => {
  const { config, verifier, sessions } = options;
  const allowedOrigins = new Set(config.GATEWAY_ALLOWED_ORIGINS);
  const latency = histogram(options.metrics, {
    name: 'kes_gateway_upstream_duration_seconds',
    help: 'Time from forwarding a request to the upstream response headers (or the failure)',
    labelNames: ['upstream', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });

  scope.setErrorHandler((error: FastifyError, request, reply) => {
    const { statusCode, body } = localizedErrorResponse(error, request, config.GATEWAY_BODY_LIMIT_BYTES);
    if (statusCode >= 500 && !(error instanceof GatewayError)) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: body.error.code, statusCode }, body.error.message);
    if (statusCode === 401) void reply.header('www-authenticate', 'Bearer');
    return reply.status(statusCode).send(body);
  });

  await scope.register(rateLimit, {
    max: config.GATEWAY_RATE_LIMIT_MAX,
    timeWindow: config.GATEWAY_RATE_LIMIT_WINDOW_MS,
    errorResponseBuilder: (request, context) =>
      gatewayError('RATE_LIMITED', 429, request.gateway.locale, { seconds: Math.max(1, Math.ceil(context.ttl / 1000)) }),
  });
  await registerProxy(scope, {
    connectTimeoutMs: config.GATEWAY_UPSTREAM_CONNECT_TIMEOUT_MS,
    responseTimeoutMs: config.GATEWAY_UPSTREAM_TIMEOUT_MS,
  });

  // preParsing: after the rate limit (an onRequest hook), before any body is read.
  scope.addHook('preParsing', async (request, _reply, payload) => {
    const row = request.gateway.permission;
    // find-my-way lets a parameter be empty (`/api/v1/tenders/` matches `/:id`); the table does not.
    if (!row || Object.values(request.params ?? {}).some((value) => value === '')) throw refusal(request);
    checkCsrf(request, row, allowedOrigins);
    await authenticate(request, row, verifier, sessions);
    const decision = decide(row, request.gateway.identity);
    const { locale } = request.gateway;
    if (decision === 'unauthenticated') throw gatewayError('UNAUTHORIZED', 401, locale);
    if (decision === 'forbidden') {
      throw gatewayError('FORBIDDEN', 403, locale, { roles: Array.isArray(row.roles) ? row.roles.join(' | ') : String(row.roles) });
    }
    return payload;
  });

  for (const row of ROUTE_PERMISSIONS) {
    if (row.upstream === 'gateway') continue;
    const forward = proxyTo({
      upstream: row.upstream,
      baseUrl: row.upstream === 'svc-auth' ? config.AUTH_URL : config.TENDERS_URL,
      latency,
    });
    const isLogout = row.method === 'POST' && row.path === '/api/v1/auth/logout';
    scope.route({
      method: row.method,
      url: row.path,
      handler: async (request, reply) => {
        // A signed-out session must not keep working through the gateway's token cache.
        const session = request.cookies[SESSION_COOKIE];
        if (isLogout && session) sessions.forget(session);
        return forward(request, reply);
      },
    });
  }

  scope.get('/api/v1/context', contextHandler({ tendersUrl: config.TENDERS_URL, fetch: options.fetch, timeoutMs: config.GATEWAY_UPSTREAM_TIMEOUT_MS }));

  if (options.docsPortal) await scope.register(options.docsPortal);
  else {
    const notInstalled = async (request: FastifyRequest) => {
      throw gatewayError('DOCS_NOT_AVAILABLE', 501, request.gateway.locale);
    };
    scope.get(DOCS_PREFIX, notInstalled);
    scope.get(`${DOCS_PREFIX}/:id`, notInstalled);
  }

  // Everything else lands here and is refused by the preParsing hook.
  scope.all('/*', async (request) => {
    throw refusal(request);
  });
};

/** 404 for a path the table does not know, 405 for a known path with another method. */
function refusal(request: FastifyRequest): GatewayError {
  const { locale } = request.gateway;
  const path = request.url.split('?')[0] ?? '/';
  const method = request.method;
  const inDocs = path === DOCS_PREFIX || path.startsWith(`${DOCS_PREFIX}/`);
  if (inDocs && method !== 'GET' && method !== 'HEAD') {
    return gatewayError('DOCS_READ_ONLY', 405, locale, {}, { allow: 'GET, HEAD' });
  }
  const allowed = [...new Set(rowsForPath(path).map((row) => row.method))];
  if (allowed.length > 0) return gatewayError('ROUTE_NOT_PERMITTED', 405, locale, { status: 405, method, path }, { allow: allowed.join(', ') });
  return gatewayError('ROUTE_NOT_PERMITTED', 404, locale, { status: 404, method, path });
}

/**
 * Cookie-authenticated writes must come from an allowed Origin (or Referer): a browser attaches
 * the session cookie to cross-site requests, but never a bearer token. Login flows have no
 * session yet; an Origin they carry must still be allowed.
 */
function checkCsrf(request: FastifyRequest, row: RoutePermission, allowedOrigins: Set<string>): void {
  const { locale } = request.gateway;
  if (row.csrf === 'origin-if-present') {
    const origin = request.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin)) throw gatewayError('CSRF_REJECTED', 403, locale);
    return;
  }
  if (!UNSAFE_METHODS.has(request.method)) return;
  if (request.headers.authorization !== undefined || request.cookies[SESSION_COOKIE] === undefined) return;
  const origin = requestOrigin(request.headers, { refererFallback: true });
  if (origin === undefined || !allowedOrigins.has(origin)) throw gatewayError('CSRF_REJECTED', 403, locale);
}

/**
 * svc-auth routes are passed through as sent (svc-auth owns sessions and checks its own tokens).
 * Elsewhere a bearer token must verify (an invalid one is refused, never downgraded to GUEST);
 * without one, the session cookie is exchanged for a token; a session svc-auth no longer knows
 * makes the caller a GUEST.
 */
async function authenticate(request: FastifyRequest, row: RoutePermission, verifier: TokenVerifier, sessions: SessionExchange) {
  if (row.upstream === 'svc-auth') return;
  const state = request.gateway;
  const token = bearerToken(request.headers.authorization);
  if (token !== undefined) {
    state.identity = await verifier.verify(token);
    state.authenticatedBy = 'bearer';
    return;
  }
  const session = request.cookies[SESSION_COOKIE];
  if (!session) return;
  try {
    state.identity = await sessions.identityFor(session, { requestId: request.id, traceparent: state.traceparent });
  } catch (error) {
    if (error instanceof UpstreamFailure) throw upstreamFailure(error, 'svc-auth', state.locale);
    throw error;
  }
  state.authenticatedBy = state.identity ? 'session' : null;
}

interface ErrorBody {
  error: { code: string; message: string; [key: string]: unknown };
}

/** Gateway errors as they are; platform and Fastify errors with the message in the caller's language. */
function localizedErrorResponse(error: unknown, request: FastifyRequest, bodyLimit: number): { statusCode: number; body: ErrorBody } {
  const locale = request.gateway?.locale ?? DEFAULT_LOCALE;
  if (error instanceof GatewayError) {
    return { statusCode: error.statusCode, body: { error: { code: error.code, message: error.message, ...(error.details ?? {}) } } };
  }
  const { statusCode, body } = toErrorResponse(error);
  const code = body.error.code;
  if (code === 'AUTH_UNAVAILABLE') {
    return { statusCode: 503, body: { error: { code, message: message(code, locale), upstream: 'svc-auth' } } };
  }
  if (statusCode >= 500) return { statusCode, body: { error: { code: 'INTERNAL', message: message('INTERNAL', locale) } } };
  if (code === 'INVALID_TOKEN' && error instanceof AppError) {
    return { statusCode, body: { error: { code, message: message(code, locale), reason: error.message } } };
  }
  if (isGatewayErrorCode(code)) {
    return { statusCode, body: { error: { ...body.error, code, message: message(code, locale, { limit: bodyLimit }) } } };
  }
  return { statusCode, body };
}

