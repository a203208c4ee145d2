// Who may do and see what: authentication, roles, buyer organisation, visibility and sealed
// bids; request validation (400/413/415); list filter and keyset pagination; health and OpenAPI.
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '@kvary/identity/keys';
import { signAccessToken } from '@kvary/identity/tokens';
import { AUDIENCE, ISSUER, bearer, draftBody, expectStatus, startHarness, type Harness } from './harness.js';

let h: Harness;
let officer: string;
let otherOfficer: string;
let supplier: string;
let supplier2: string;

beforeAll(async () => {
  h = await startHarness('tenderaccess');
  officer = await h.token('PROCUREMENT_OFFICER', 'buyer-org', 'officer-1');
  otherOfficer = await h.token('PROCUREMENT_OFFICER', 'other-buyer', 'officer-9');
  supplier = await h.token('SUPPLIER', 'supplier-org', 'supplier-1');
  supplier2 = await h.token('SUPPLIER', 'supplier-org-2', 'supplier-2');
});
afterAll(async () => h.close());

async function createDraft(token = officer, body: Record<string, unknown> = draftBody()): Promise<string> {
  const res = await h.app.inject({ method: 'POST', url: '/api/v1/tenders', headers: bearer(token), payload: body });
  return expectStatus(res, 201).id as string;
}
function post(url: string, token: string | undefined, payload?: unknown): Promise<LightMyRequestResponse> {
  const options: InjectOptions = { method: 'POST', url, headers: token ? bearer(token) : {} };
  if (payload !== undefined) options.payload = payload as InjectOptions['payload'];
  return h.app.inject(options);
}
const get = (url: string, token?: string): Promise<LightMyRequestResponse> =>
  h.app.inject({ method: 'GET', url, headers: token ? bearer(token) : {} });

describe('authentication and roles', () => {
  it('answers 401 without a token on a mutating route, before validating the body', async () => {
    const res = await post('/api/v1/tenders', undefined, { nonsense: true });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('UNAUTHORIZED');
    expect(await h.outbox()).toHaveLength(0);
  });

  it('answers 401 for a bad token, also on read routes (never downgraded to GUEST)', async () => {
    const stranger = await generateSigningKey();
    const forged = await signAccessToken(stranger, { sub: 'x', roles: ['PROCUREMENT_OFFICER'], orgId: 'buyer-org', issuer: ISSUER, audience: AUDIENCE });
    for (const headers of [bearer(forged), bearer('garbage'), { authorization: 'Basic dXNlcjpwYXNz' }]) {
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/tenders', headers, payload: draftBody() });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('INVALID_TOKEN');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    expect((await get('/api/v1/tenders', forged)).statusCode).toBe(401);
    const expired = await signAccessToken(h.key, { sub: 'x', roles: ['PROCUREMENT_OFFICER'], orgId: 'buyer-org', issuer: ISSUER, audience: AUDIENCE, expiresIn: -60 });
    expect((await post('/api/v1/tenders', expired, draftBody())).json().error.message).toMatch(/expired/);
    const hs = await new SignJWT({ roles: ['PROCUREMENT_OFFICER'], org_id: 'buyer-org' })
      .setProtectedHeader({ alg: 'HS256', kid: h.key.kid })
      .setSubject('x')
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(h.key.publicJwk)));
    expect((await post('/api/v1/tenders', hs, draftBody())).statusCode).toBe(401);
  });

  it('rejects the rest of the JWT matrix at the service too: alg none, wrong issuer, wrong audience, unknown kid', async () => {
    const claims = { sub: 'x', roles: ['PROCUREMENT_OFFICER'] as const, orgId: 'buyer-org' };
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const none = `${b64({ alg: 'none', typ: 'JWT', kid: h.key.kid })}.${b64({ sub: 'x', roles: ['PROCUREMENT_OFFICER'], org_id: 'buyer-org', iss: ISSUER, aud: AUDIENCE, exp: now + 300 })}.`;
    const wrongIssuer = await signAccessToken(h.key, { ...claims, issuer: 'http://evil.example', audience: AUDIENCE });
    const wrongAudience = await signAccessToken(h.key, { ...claims, issuer: ISSUER, audience: 'someone-else' });
    const unknownKid = await signAccessToken({ ...h.key, kid: 'no-such-kid' }, { ...claims, issuer: ISSUER, audience: AUDIENCE });
    for (const [name, token] of Object.entries({ none, wrongIssuer, wrongAudience, unknownKid })) {
      const res = await post('/api/v1/tenders', token, draftBody());
      expect(res.statusCode, name).toBe(401);
      expect(res.json().error.code, name).toBe('INVALID_TOKEN');
    }
    expect(await h.outbox()).toHaveLength(0);
  });

  it('answers 403 for the wrong role', async () => {
    const res = await post('/api/v1/tenders', supplier, draftBody());
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toEqual({ code: 'FORBIDDEN', message: 'this action needs the role PROCUREMENT_OFFICER' });
    const id = await createDraft();
    await post(`/api/v1/tenders/${id}/publish`, officer);
    expect((await post(`/api/v1/tenders/${id}/bids`, officer, { amount: { amount: '1', currency: 'GEL' } })).statusCode).toBe(403);
    const guest = await h.token('GUEST', null);
    expect((await post(`/api/v1/tenders/${id}/close`, guest)).statusCode).toBe(403);
  });

  it("answers 403 when another organisation's officer changes a published tender, 404 for its draft", async () => {
    const draft = await createDraft();
    expect((await post(`/api/v1/tenders/${draft}/publish`, otherOfficer)).statusCode).toBe(404);
    const published = await createDraft();
    await post(`/api/v1/tenders/${published}/publish`, officer);
    const res = await post(`/api/v1/tenders/${published}/close`, otherOfficer);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.message).toBe('only the buyer organisation can change this tender');
    const cancel = await post(`/api/v1/tenders/${published}/cancel`, otherOfficer, { reason: 'mine now' });
    expect(cancel.statusCode).toBe(403);
    const selfBid = await post(`/api/v1/tenders/${published}/bids`, await h.token('SUPPLIER', 'buyer-org', 'u'), {
      amount: { amount: '1', currency: 'GEL' },
    });
    expect(selfBid.statusCode).toBe(403);
  });
});

describe('request validation', () => {
  it('answers 400 naming the field, and refuses unknown fields', async () => {
    const bad = await post('/api/v1/tenders', officer, draftBody({ budget: { amount: 12.5, currency: 'GEL' } }));
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'body.budget.amount' });
    const extra = await post('/api/v1/tenders', officer, draftBody({ status: 'awarded' }));
    expect(extra.statusCode).toBe(400);
    expect(extra.json().error.code).toBe('VALIDATION_FAILED');
    const id = await createDraft();
    const emptyPatch = await h.app.inject({ method: 'PATCH', url: `/api/v1/tenders/${id}`, headers: bearer(officer), payload: {} });
    expect(emptyPatch.statusCode).toBe(400);
    const publishWithBody = await post(`/api/v1/tenders/${id}/publish`, officer, { force: true });
    expect(publishWithBody.statusCode).toBe(400);
    expect((await get('/api/v1/tenders/not-a-uuid')).json().error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'params.id' });
    expect((await get('/api/v1/tenders?limit=1000')).json().error.field).toBe('querystring.limit');
    expect((await get('/api/v1/tenders?cursor=bm9wZQ')).json().error).toMatchObject({ code: 'INVALID_CURSOR' });
    expect(await h.outbox(id)).toHaveLength(1);
  });

  it('answers 413 over the body limit and 415 for a non-JSON body', async () => {
    const big = await post('/api/v1/tenders', officer, draftBody({ description: 'x'.repeat(70_000) }));
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    const text = await h.app.inject({
      method: 'POST',
      url: '/api/v1/tenders',
      headers: { ...bearer(officer), 'content-type': 'text/plain' },
      payload: 'title=x',
    });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('visibility', () => {
  it('hides drafts from other organisations and anonymous callers; shows published tenders to everyone', async () => {
    const id = await createDraft();
    expect((await get(`/api/v1/tenders/${id}`, officer)).statusCode).toBe(200);
    expect((await get(`/api/v1/tenders/${id}`, await h.token('GUEST', 'buyer-org', 'colleague'))).statusCode).toBe(200);
    for (const token of [undefined, otherOfficer, supplier]) {
      const res = await get(`/api/v1/tenders/${id}`, token);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    }
    await post(`/api/v1/tenders/${id}/publish`, officer);
    for (const token of [undefined, otherOfficer, supplier]) {
      expect(expectStatus(await get(`/api/v1/tenders/${id}`, token), 200)).toMatchObject({ id, status: 'published' });
    }
    expect((await post(`/api/v1/tenders/${id}/cancel`, officer, { reason: 'r' })).statusCode).toBe(200);
    expect((await get(`/api/v1/tenders/${id}`)).json().status).toBe('cancelled');
  });

  it('keeps bids sealed from the buyer until the tender closes; suppliers see only their own', async () => {
    const id = await createDraft();
    await post(`/api/v1/tenders/${id}/publish`, officer);
    const b1 = expectStatus(await post(`/api/v1/tenders/${id}/bids`, supplier, { amount: { amount: '100', currency: 'GEL' } }), 201);
    const b2 = expectStatus(await post(`/api/v1/tenders/${id}/bids`, supplier2, { amount: { amount: '90', currency: 'GEL' } }), 201);
    const bidIds = async (token?: string) => (expectStatus(await get(`/api/v1/tenders/${id}`, token), 200).bids as { id: string }[]).map((b) => b.id);

    expect(await bidIds(officer)).toEqual([]);
    expect(await bidIds(supplier)).toEqual([b1.id]);
    expect(await bidIds(supplier2)).toEqual([b2.id]);
    expect(await bidIds()).toEqual([]);
    expect(await bidIds(otherOfficer)).toEqual([]);

    await post(`/api/v1/tenders/${id}/close`, officer);
    expect((await bidIds(officer)).sort()).toEqual([b1.id, b2.id].sort());
    expect(await bidIds(supplier)).toEqual([b1.id]);
    expect(await bidIds()).toEqual([]);
  });
});

describe('list', () => {
  it('filters by status and pages with an opaque keyset cursor over more than two pages', async () => {
    const org = await h.token('PROCUREMENT_OFFICER', 'list-org', 'lister');
    const created: string[] = [];
    for (let i = 0; i < 7; i++) {
      const id = await createDraft(org, draftBody({ title: `list ${i}` }));
      if (i % 2 === 0) await post(`/api/v1/tenders/${id}/publish`, org);
      created.push(id);
    }
    const newestFirst = [...created].reverse();

    // The owner sees drafts and published; pages of 2 over 7 items: 4 pages.
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const qs: string = `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = expectStatus(await get(`/api/v1/tenders${qs}`, org), 200) as { items: { id: string; orgId: string }[]; nextCursor: string | null };
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.filter((t) => t.orgId === 'list-org').map((t) => t.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 50);
    expect(seen).toEqual(newestFirst);
    expect(pages).toBeGreaterThan(2);

    // Filter: published only, for an anonymous caller (drafts are never listed to others).
    const published = newestFirst.filter((_, i) => (created.length - 1 - i) % 2 === 0);
    const anonymous: string[] = [];
    cursor = null;
    do {
      const qs: string = `?status=published&limit=1${cursor ? `&cursor=${cursor}` : ''}`;
      const page = expectStatus(await get(`/api/v1/tenders${qs}`), 200) as { items: { id: string; status: string; orgId: string }[]; nextCursor: string | null };
      for (const t of page.items) expect(t.status).toBe('published');
      anonymous.push(...page.items.filter((t) => t.orgId === 'list-org').map((t) => t.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(anonymous).toEqual(published);

    const drafts = expectStatus(await get('/api/v1/tenders?status=draft&limit=100'), 200) as { items: unknown[] };
    expect(drafts.items).toEqual([]);
  });
});

describe('service endpoints', () => {
  it('/health checks Postgres only', async () => {
    const res = await get('/health');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ ok: true, service: 'svc-tenders', checks: { postgres: { ok: true } } });
  });

  it('/openapi.json documents every tender route from the zod schemas', async () => {
    const doc = expectStatus(await get('/openapi.json'), 200) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/tenders/',
        '/api/v1/tenders/{id}',
        '/api/v1/tenders/{id}/publish',
        '/api/v1/tenders/{id}/bids',
        '/api/v1/tenders/{id}/close',
        '/api/v1/tenders/{id}/award',
        '/api/v1/tenders/{id}/cancel',
      ]),
    );
    expect(JSON.stringify(doc.paths['/api/v1/tenders/']?.post)).toContain('"additionalProperties":false');
  });

  it('/metrics is served', async () => {
    const res = await get('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('svc_tenders_commands_total');
  });
});
