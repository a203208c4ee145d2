// Test harness: the real gateway listening on port 0 in front of small Fastify stand-ins for
// svc-auth and svc-tenders (our own services, answering like the real ones) that record every
// request they receive, so tests can assert what reached an upstream and with which headers.
import { randomUUID } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { generateSigningKey, jwksOf, type SigningKey } from '@kvary/identity/keys';
import type { Role } from '@kvary/identity/roles';
import { signAccessToken } from '@kvary/identity/tokens';
import { parseConfig } from '@kvary/platform/config';
import type { HttpApp } from '@kvary/platform/http';
import { createLogger } from '@kvary/platform/logging';
import { createMetricsRegistry, type Registry } from '@kvary/platform/metrics';
import { buildApp, type AppDeps } from '../src/app.js';
import { configSchema } from '../src/config.js';
import { freePort } from '@kvary/testing/wait';

export const ISSUER = 'http://127.0.0.1:4100';
export const AUDIENCE = 'kvary';
export const ALLOWED_ORIGIN = 'http://127.0.0.1:4020';

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface StandIn {
  url: string;
  requests: Recorded[];
  /** Requests the gateway proxied (its own health probes, JWKS and token fetches excluded). */
  calls(): Recorded[];
  healthy: boolean;
  close(): Promise<void>;
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

function recorder(app: FastifyInstance, requests: Recorded[]) {
  app.addHook('preHandler', async (request) => {
    requests.push({ method: request.method, url: request.url, headers: { ...request.headers }, body: request.body });
  });
}

// Only proxied requests carry the forwarding headers the gateway's proxy sets.
const proxied = (r: Recorded) => r.headers['x-forwarded-host'] !== undefined;

export interface Session {
  sub: string;
  roles: Role[];
  orgId: string | null;
}

export interface AuthStandIn extends StandIn {
  key: SigningKey;
  sessions: Map<string, Session>;
  /** How many times POST /api/v1/auth/token was called. */
  tokenCalls: number;
  /** expiresIn (seconds) of the tokens /token hands out. */
  tokenLifetimeSeconds: number;
}

/** svc-auth as the gateway sees it: login sets the httpOnly kes_session cookie, /token trades it for a JWT. */
export async function startAuthStandIn(key?: SigningKey): Promise<AuthStandIn> {
  const signingKey = key ?? (await generateSigningKey());
  const app = Fastify();
  const requests: Recorded[] = [];
  const sessions = new Map<string, Session>();
  recorder(app, requests);
  const state: AuthStandIn = {
    url: '',
    key: signingKey,
    sessions,
    requests,
    calls: () => requests.filter(proxied),
    healthy: true,
    tokenCalls: 0,
    tokenLifetimeSeconds: 900,
    close: () => app.close(),
  };
  const sessionOf = (cookieHeader: string | undefined) => {
    const match = /(?:^|;\s*)kes_session=([^;]+)/.exec(cookieHeader ?? '');
    return match?.[1] ? sessions.get(decodeURIComponent(match[1])) : undefined;
  };
  const tokenFor = (s: Session, expiresIn = state.tokenLifetimeSeconds) =>
    signAccessToken(signingKey, { sub: s.sub, roles: s.roles, orgId: s.orgId, issuer: ISSUER, audience: AUDIENCE, expiresIn: Math.ceil(expiresIn) });

  app.get('/health', async (_req, reply) => reply.status(state.healthy ? 200 : 503).send({ ok: state.healthy, service: 'svc-auth' }));
  app.get('/.well-known/jwks.json', async () => jwksOf(signingKey));
  app.post<{ Body: { username: string; roles?: Role[]; orgId?: string } }>('/api/v1/auth/login', async (request, reply) => {
    const session: Session = { sub: request.body.username, roles: request.body.roles ?? ['SUPPLIER'], orgId: request.body.orgId ?? 'org-1' };
    const id = randomUUID();
    sessions.set(id, session);
    reply.header('set-cookie', `kes_session=${id}; Path=/; HttpOnly; SameSite=Lax`);
    return { accessToken: await tokenFor(session), tokenType: 'Bearer', expiresIn: state.tokenLifetimeSeconds, user: session };
  });
  app.post('/api/v1/auth/logout', async (request, reply) => {
    const match = /(?:^|;\s*)kes_session=([^;]+)/.exec(request.headers.cookie ?? '');
    if (match?.[1]) sessions.delete(decodeURIComponent(match[1]));
    reply.header('set-cookie', 'kes_session=; Path=/; HttpOnly; Max-Age=0');
    return reply.status(204).send();
  });
  app.get('/api/v1/auth/me', async (request, reply) => {
    const session = sessionOf(request.headers.cookie);
    if (!session) return reply.status(401).send({ error: { code: 'UNAUTHORIZED', message: 'no session' } });
    return session;
  });
  app.post('/api/v1/auth/token', async (request, reply) => {
    state.tokenCalls++;
    const session = sessionOf(request.headers.cookie);
    if (!session) return reply.status(401).send({ error: { code: 'UNAUTHORIZED', message: 'no session' } });
    return { accessToken: await tokenFor(session), tokenType: 'Bearer', expiresIn: state.tokenLifetimeSeconds };
  });
  app.get('/api/v1/auth/oidc/login', async (_request, reply) => {
    reply.header('set-cookie', 'kes_oidc_state=abc; Path=/api/v1/auth/oidc; HttpOnly; SameSite=Lax');
    return reply.redirect('http://127.0.0.1:4001/auth?client_id=kvary', 302);
  });
  app.get('/api/v1/auth/oidc/callback', async () => ({ ok: true }));
  state.url = await listen(app);
  return state;
}

export interface TendersStandIn extends StandIn {
  workspace: { status: number; body: unknown };
  /** Milliseconds GET /api/v1/tenders/slow waits before answering. */
  slowMs: number;
}

/** svc-tenders as the gateway sees it: answers every tender route and echoes what it got. */
export async function startTendersStandIn(): Promise<TendersStandIn> {
  const app = Fastify();
  const requests: Recorded[] = [];
  recorder(app, requests);
  const state: TendersStandIn = {
    url: '',
    requests,
    calls: () => requests.filter(proxied),
    healthy: true,
    workspace: { status: 200, body: { orgId: 'org-1', tendersByStatus: { draft: 1 }, recentActivity: [] } },
    slowMs: 0,
    close: () => app.close(),
  };
  app.get('/health', async (_req, reply) => reply.status(state.healthy ? 200 : 503).send({ ok: state.healthy, service: 'svc-tenders' }));
  app.get('/api/v1/workspace', async (_req, reply) => reply.status(state.workspace.status).send(state.workspace.body));
  app.get('/api/v1/tenders/slow', async () => {
    await new Promise((resolve) => setTimeout(resolve, state.slowMs));
    return { slow: true };
  });
  app.get('/api/v1/tenders/unavailable', async (_request, reply) =>
    reply.status(503).send({ error: { code: 'SERVICE_UNAVAILABLE', message: 'database unreachable' } }),
  );
  app.all('/*', async (request, reply) => {
    reply.header('content-type', 'application/json');
    return reply.status(request.method === 'POST' ? 201 : 200).send({ upstream: 'svc-tenders', method: request.method, url: request.url });
  });
  state.url = await listen(app);
  return state;
}

/** A port nothing listens on (an upstream that is down). */
export async function closedPortUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

export interface Gateway {
  url: string;
  app: HttpApp;
  metrics: Registry;
  close(): Promise<void>;
}

export async function startGateway(
  upstreams: { authUrl: string; tendersUrl: string },
  env: Record<string, string> = {},
  deps: Partial<AppDeps> = {},
): Promise<Gateway> {
  const config = parseConfig(configSchema, {
    KES_ENV: 'test',
    AUTH_URL: upstreams.authUrl,
    TENDERS_URL: upstreams.tendersUrl,
    AUTH_JWKS_URL: `${upstreams.authUrl}/.well-known/jwks.json`,
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    GATEWAY_UPSTREAM_CONNECT_TIMEOUT_MS: '1000',
    GATEWAY_HEALTH_TIMEOUT_MS: '1000',
    ...env,
  });
  const metrics = createMetricsRegistry({ service: 'gateway-test' });
  const app = buildApp({
    config,
    logger: createLogger({ name: 'gateway-test', level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false }),
    metrics,
    ...deps,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, app, metrics, close: () => app.close() };
}

export interface Stack {
  auth: AuthStandIn;
  tenders: TendersStandIn;
  gateway: Gateway;
  close(): Promise<void>;
}

/** Auth and tenders stand-ins with a gateway in front: the set-up most spec files share. */
export async function startStack(): Promise<Stack> {
  const auth = await startAuthStandIn();
  const tenders = await startTendersStandIn();
  const gateway = await startGateway({ authUrl: auth.url, tendersUrl: tenders.url });
  return {
    auth,
    tenders,
    gateway,
    close: async () => {
      await gateway.close();
      await auth.close();
      await tenders.close();
    },
  };
}

export function token(key: SigningKey, roles: Role[], orgId: string | null = 'org-1', sub = 'user-1'): Promise<string> {
  return signAccessToken(key, { sub, roles, orgId, issuer: ISSUER, audience: AUDIENCE });
}

export const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

/** fetch against the gateway with a JSON body when one is given. */
export async function call(
  gateway: Gateway,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown>; text: string }> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  }
  const response = await fetch(`${gateway.url}${path}`, { method, headers, body, redirect: 'manual' });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = {};
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

/** A GET with the path sent exactly as given (fetch would normalise dot segments). */
export function rawGet(gateway: Gateway, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${gateway.url}${path}`, { method: 'GET', path }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

export const errorOf = (res: { body: Record<string, unknown> }) => res.body.error as { code: string; message: string; [k: string]: unknown };
