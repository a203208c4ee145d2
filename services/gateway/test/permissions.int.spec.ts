// Every row of the permission table, called by every role, against an expectation matrix
// written out by hand (not derived from the table); and routes the table does not list are
// refused without reaching any service.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES, type Role } from '@kvary/identity/roles';
import { ROUTE_PERMISSIONS } from '../src/permissions.js';
import {
  bearer,
  call,
  errorOf,
  rawGet,
  token,
  startStack,
  type AuthStandIn,
  type Gateway,
  type Stack,
  type TendersStandIn,
} from './harness.js';

// Columns: GUEST (no token), SUPPLIER, PROCUREMENT_OFFICER, CHAIN_OFFICER, DOCUMENT_CUSTODIAN,
// GOVERNANCE_ADMIN. 'ok' = proxied to the named service (or answered by the gateway itself).
const CALLERS: Role[] = ['GUEST', 'SUPPLIER', 'PROCUREMENT_OFFICER', 'CHAIN_OFFICER', 'DOCUMENT_CUSTODIAN', 'GOVERNANCE_ADMIN'];
type Cell = 'ok' | 401 | 403;
interface Expectation {
  method: string;
  pattern: string;
  url: string;
  target: 'svc-auth' | 'svc-tenders' | 'gateway';
  /** For gateway-answered routes: the status an allowed caller gets. */
  localStatus?: number;
  cells: [Cell, Cell, Cell, Cell, Cell, Cell];
}

const MATRIX: Expectation[] = [
  { method: 'POST', pattern: '/api/v1/auth/login', url: '/api/v1/auth/login', target: 'svc-auth', cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'POST', pattern: '/api/v1/auth/logout', url: '/api/v1/auth/logout', target: 'svc-auth', cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'GET', pattern: '/api/v1/auth/me', url: '/api/v1/auth/me', target: 'svc-auth', cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'POST', pattern: '/api/v1/auth/token', url: '/api/v1/auth/token', target: 'svc-auth', cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'GET', pattern: '/api/v1/auth/oidc/login', url: '/api/v1/auth/oidc/login', target: 'svc-auth', cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'GET', pattern: '/api/v1/auth/oidc/callback', url: '/api/v1/auth/oidc/callback?code=c&state=s', target: 'svc-auth', cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'GET', pattern: '/.well-known/jwks.json', url: '/.well-known/jwks.json', target: 'svc-auth', cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'GET', pattern: '/api/v1/tenders', url: '/api/v1/tenders?limit=5', target: 'svc-tenders', cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'GET', pattern: '/api/v1/tenders/:id', url: '/api/v1/tenders/t-1', target: 'svc-tenders', cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'POST', pattern: '/api/v1/tenders', url: '/api/v1/tenders', target: 'svc-tenders', cells: [401, 403, 'ok', 403, 403, 403] },
  { method: 'PATCH', pattern: '/api/v1/tenders/:id', url: '/api/v1/tenders/t-1', target: 'svc-tenders', cells: [401, 403, 'ok', 403, 403, 403] },
  { method: 'POST', pattern: '/api/v1/tenders/:id/publish', url: '/api/v1/tenders/t-1/publish', target: 'svc-tenders', cells: [401, 403, 'ok', 403, 403, 403] },
  { method: 'POST', pattern: '/api/v1/tenders/:id/close', url: '/api/v1/tenders/t-1/close', target: 'svc-tenders', cells: [401, 403, 'ok', 403, 403, 403] },
  { method: 'POST', pattern: '/api/v1/tenders/:id/award', url: '/api/v1/tenders/t-1/award', target: 'svc-tenders', cells: [401, 403, 'ok', 403, 403, 403] },
  { method: 'POST', pattern: '/api/v1/tenders/:id/cancel', url: '/api/v1/tenders/t-1/cancel', target: 'svc-tenders', cells: [401, 403, 'ok', 403, 403, 403] },
  { method: 'POST', pattern: '/api/v1/tenders/:id/bids', url: '/api/v1/tenders/t-1/bids', target: 'svc-tenders', cells: [401, 'ok', 403, 403, 403, 403] },
  { method: 'GET', pattern: '/api/v1/workspace', url: '/api/v1/workspace', target: 'svc-tenders', cells: [401, 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'GET', pattern: '/api/v1/context', url: '/api/v1/context', target: 'gateway', localStatus: 200, cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'GET', pattern: '/api/v1/docs', url: '/api/v1/docs', target: 'gateway', localStatus: 501, cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'GET', pattern: '/api/v1/docs/:id', url: '/api/v1/docs/runbook', target: 'gateway', localStatus: 501, cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'GET', pattern: '/health', url: '/health', target: 'gateway', localStatus: 200, cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
  { method: 'GET', pattern: '/metrics', url: '/metrics', target: 'gateway', localStatus: 200, cells: ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'] },
];

let auth: AuthStandIn;
let tenders: TendersStandIn;
let gateway: Gateway;
const tokens = new Map<Role, string>();

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
  ({ auth, tenders, gateway } = stack);
  for (const role of ROLES) if (role !== 'GUEST') tokens.set(role, await token(auth.key, [role], 'org-1', `user-${role.toLowerCase()}`));
});
afterAll(async () => stack?.close());

const headersFor = (caller: Role) => (caller === 'GUEST' ? {} : bearer(tokens.get(caller) ?? ''));
const bodyFor = (e: Expectation) => (e.method === 'GET' ? undefined : e.pattern.endsWith('/login') ? { username: 'u1' } : {});

describe('the permission table', () => {
  it('is covered row for row by the expectation matrix', () => {
    const table = ROUTE_PERMISSIONS.map((r) => `${r.method} ${r.path} -> ${r.upstream}`).sort();
    const matrix = MATRIX.map((e) => `${e.method} ${e.pattern} -> ${e.target}`).sort();
    expect(matrix).toEqual(table);
    expect(CALLERS).toEqual([...ROLES]);
  });

  describe.each(MATRIX)('$method $pattern', (e) => {
    it.each(CALLERS.map((caller, i) => ({ caller, cell: e.cells[i] as Cell })))('$caller -> $cell', async ({ caller, cell }) => {
      const upstream = e.target === 'svc-auth' ? auth : e.target === 'svc-tenders' ? tenders : undefined;
      const before = upstream?.calls().length ?? 0;
      // Cookie-less bearer calls need no Origin; send one anyway for login (allowed origin).
      const res = await call(gateway, e.method, e.url, { headers: headersFor(caller), body: bodyFor(e) });
      const reached = (upstream?.calls().length ?? 0) - before;
      if (cell === 'ok') {
        if (upstream) {
          expect(reached, res.text).toBe(1);
          const got = upstream.calls().at(-1);
          expect(got?.method).toBe(e.method);
          expect(got?.url).toBe(e.url);
        } else {
          expect(res.status, res.text).toBe(e.localStatus);
        }
      } else {
        expect(res.status, res.text).toBe(cell);
        expect(errorOf(res).code).toBe(cell === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN');
        expect(reached).toBe(0);
      }
    });
  });
});

describe('routes outside the table', () => {
  const refused: { method: string; url: string; status: number; code: string; allow?: string }[] = [
    { method: 'GET', url: '/api/v1/admin', status: 404, code: 'ROUTE_NOT_PERMITTED' },
    { method: 'GET', url: '/api/v1/auth/users', status: 404, code: 'ROUTE_NOT_PERMITTED' },
    { method: 'GET', url: '/openapi.json', status: 404, code: 'ROUTE_NOT_PERMITTED' },
    { method: 'GET', url: '/api/v1/tenders/', status: 404, code: 'ROUTE_NOT_PERMITTED' },
    { method: 'GET', url: '/api/v1/tenders/t-1/bids/b-1', status: 404, code: 'ROUTE_NOT_PERMITTED' },
    { method: 'GET', url: '//api/v1/tenders', status: 404, code: 'ROUTE_NOT_PERMITTED' },
    { method: 'DELETE', url: '/api/v1/tenders/t-1', status: 405, code: 'ROUTE_NOT_PERMITTED', allow: 'GET, PATCH' },
    { method: 'PUT', url: '/api/v1/tenders/t-1', status: 405, code: 'ROUTE_NOT_PERMITTED', allow: 'GET, PATCH' },
    { method: 'GET', url: '/api/v1/tenders/t-1/bids', status: 405, code: 'ROUTE_NOT_PERMITTED', allow: 'POST' },
    { method: 'GET', url: '/api/v1/auth/login', status: 405, code: 'ROUTE_NOT_PERMITTED', allow: 'POST' },
    { method: 'DELETE', url: '/api/v1/workspace', status: 405, code: 'ROUTE_NOT_PERMITTED', allow: 'GET' },
    { method: 'POST', url: '/metrics', status: 405, code: 'ROUTE_NOT_PERMITTED', allow: 'GET' },
    { method: 'OPTIONS', url: '/api/v1/tenders', status: 405, code: 'ROUTE_NOT_PERMITTED', allow: 'GET, POST' },
    { method: 'POST', url: '/api/v1/docs', status: 405, code: 'DOCS_READ_ONLY' },
    { method: 'PUT', url: '/api/v1/docs/runbook', status: 405, code: 'DOCS_READ_ONLY' },
    { method: 'PATCH', url: '/api/v1/docs/runbook', status: 405, code: 'DOCS_READ_ONLY' },
    { method: 'DELETE', url: '/api/v1/docs/runbook', status: 405, code: 'DOCS_READ_ONLY' },
    { method: 'POST', url: '/api/v1/docs/a/b', status: 405, code: 'DOCS_READ_ONLY' },
  ];

  it.each(refused)('$method $url -> $status $code, never proxied (even for GOVERNANCE_ADMIN)', async (r) => {
    const before = auth.calls().length + tenders.calls().length;
    for (const headers of [{}, bearer(tokens.get('GOVERNANCE_ADMIN') ?? '')]) {
      const res = await call(gateway, r.method, r.url, { headers, body: ['GET', 'DELETE', 'OPTIONS'].includes(r.method) ? undefined : {} });
      expect(res.status, res.text).toBe(r.status);
      expect(errorOf(res).code).toBe(r.code);
      if (r.allow) expect(errorOf(res).allow).toBe(r.allow);
    }
    expect(auth.calls().length + tenders.calls().length).toBe(before);
  });

  it('answers HEAD like GET', async () => {
    const before = tenders.calls().length;
    const res = await call(gateway, 'HEAD', '/api/v1/tenders');
    expect(res.status).toBe(200);
    expect(tenders.calls().length - before).toBe(1);
    expect((await call(gateway, 'HEAD', '/api/v1/workspace')).status).toBe(401);
  });

  it('answers DOCS_READ_ONLY with the portal message, in both languages', async () => {
    const en = await call(gateway, 'DELETE', '/api/v1/docs/runbook?lang=en');
    expect(errorOf(en).message).toMatch(/^documentation portal is read-only/);
    const ka = await call(gateway, 'DELETE', '/api/v1/docs/runbook');
    expect(errorOf(ka).message).toMatch(/დოკუმენტაციის პორტალი მხოლოდ წასაკითხადაა/);
  });

  it('refuses a path that tries to climb out of a permitted route', async () => {
    const before = tenders.calls().length;
    for (const url of ['/api/v1/tenders/..%2F..%2Fadmin', '/api/v1/tenders/%2e%2e%2Fworkspace', '/api/v1/tenders/../workspace', '/api/v1/tenders/%2e%2e']) {
      const res = await rawGet(gateway, url);
      expect([400, 404], `${url}: ${res.body}`).toContain(res.status);
    }
    expect(tenders.calls().length).toBe(before);
  });
});
