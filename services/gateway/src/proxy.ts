// Forwarding to the services with @fastify/reply-from (undici): bounded connect and response
// timeouts, identity headers stripped, the verified bearer token, request id, trace context and
// the resolved language added; an unreachable upstream becomes a JSON 502, a slow one a 504.
import type { IncomingHttpHeaders } from 'node:http';
import replyFrom from '@fastify/reply-from';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { histogram } from '@kvary/platform/metrics';
import { withoutIdentityHeaders } from './identity.js';
import { gatewayError, serviceName, type GatewayError } from './i18n.js';
import type { Locale } from './locale.js';
import type { Upstream } from './permissions.js';

export type ProxiedUpstream = Exclude<Upstream, 'gateway'>;

export interface ProxySettings {
  connectTimeoutMs: number;
  /** Time to the response headers, and the longest pause while the body streams. */
  responseTimeoutMs: number;
}

export async function registerProxy(scope: FastifyInstance, settings: ProxySettings): Promise<void> {
  await scope.register(replyFrom, {
    undici: {
      connections: 128,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connectTimeout: settings.connectTimeoutMs,
      headersTimeout: settings.responseTimeoutMs,
      bodyTimeout: settings.responseTimeoutMs,
      // reply-from turns TLS verification off unless told otherwise.
      connect: { timeout: settings.connectTimeoutMs, rejectUnauthorized: true },
    },
    retryMethods: ['GET', 'HEAD'],
    destroyAgent: true,
    disableRequestLogging: true,
  });
}

/** Headers a client may not set on what the gateway forwards (it sets its own). */
const REPLACED = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'x-request-id', 'traceparent', 'accept-language'];

export function upstreamHeaders(request: FastifyRequest, incoming: IncomingHttpHeaders, upstream: ProxiedUpstream): IncomingHttpHeaders {
  const headers = withoutIdentityHeaders(incoming);
  for (const name of REPLACED) delete headers[name];
  const state = request.gateway;
  headers['x-request-id'] = request.id;
  headers.traceparent = state.traceparent;
  headers['accept-language'] = state.locale;
  headers['x-forwarded-for'] = request.ip;
  headers['x-forwarded-proto'] = request.protocol;
  headers['x-forwarded-host'] = request.host;
  if (upstream === 'svc-tenders') {
    // Services trust only a bearer JWT they verify; the session cookie stays at the edge.
    delete headers.cookie;
    if (state.identity) headers.authorization = `Bearer ${state.identity.token}`;
    else delete headers.authorization;
  }
  // svc-auth owns sessions: it gets the cookies (session, OIDC state) and Authorization as sent.
  return headers;
}

const TIMEOUT_CODES = new Set([
  'FST_REPLY_FROM_TIMEOUT',
  'FST_REPLY_FROM_GATEWAY_TIMEOUT',
  'FST_REPLY_FROM_HTTP_REQUEST_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'TimeoutError',
]);

/** 504 when the upstream was too slow, 502 for anything else (refused, reset, DNS...). */
export function upstreamFailure(error: unknown, upstream: ProxiedUpstream, locale: Locale): GatewayError {
  let timedOut = false;
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, name } = e as { code?: string; name?: string };
    if ((code && TIMEOUT_CODES.has(code)) || (name && TIMEOUT_CODES.has(name))) timedOut = true;
  }
  const params = { service: serviceName(upstream, locale) };
  return timedOut
    ? gatewayError('UPSTREAM_TIMEOUT', 504, locale, params, { upstream })
    : gatewayError('UPSTREAM_UNAVAILABLE', 502, locale, params, { upstream });
}

export interface ProxyRoute {
  upstream: ProxiedUpstream;
  baseUrl: string;
  latency: ReturnType<typeof histogram<'upstream' | 'outcome'>>;
}

export function proxyTo({ upstream, baseUrl, latency }: ProxyRoute) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const timer = latency.startTimer({ upstream });
    return reply.from(`${baseUrl}${request.url}`, {
      // One retry, and only for an idempotent request on a kept-alive socket the upstream had
      // already closed. An upstream answer (503 included, which reply-from would otherwise
      // retry up to ten times) is passed on as it is.
      retriesCount: 1,
      retryDelay: ({ err, req, res, attempt, getDefaultDelay }) => (err && !res ? getDefaultDelay(req, res, err, attempt) : null),
      rewriteRequestHeaders: (_req, headers) => upstreamHeaders(request, headers as IncomingHttpHeaders, upstream),
      rewriteHeaders: (headers) => {
        timer({ outcome: 'response' });
        const out = { ...headers };
        // The gateway answers for the request id and the trace; the language is the resolved
        // one unless the service said otherwise.
        delete out['x-request-id'];
        delete out.traceparent;
        delete out['x-powered-by'];
        if (!out['content-language']) out['content-language'] = request.gateway.locale;
        return out;
      },
      onError: (failedReply, { error }) => {
        const failure = upstreamFailure(error, upstream, request.gateway.locale);
        timer({ outcome: failure.statusCode === 504 ? 'timeout' : 'unavailable' });
        request.log.warn({ upstream, err: error }, failure.message);
        void failedReply.send(failure);
      },
    });
  };
}
