// Commands against real Postgres: one outbox event per command (type, version, contract,
// headers), atomic rollback, the state machine over HTTP, and Idempotency-Key.
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TENDERS_SOURCE, TENDERS_TOPIC, ceType, parseEvent } from '@kvary/contracts/tenders';
import { purgeIdempotencyKeys } from '../src/idempotency.js';
import { bearer, draftBody, expectStatus, startHarness, type Harness } from './harness.js';

let h: Harness;
let officer: string;
let supplier: string;
let supplier2: string;

beforeAll(async () => {
  h = await startHarness('tendercmd');
  officer = await h.token('PROCUREMENT_OFFICER', 'buyer-org', 'officer-1');
  supplier = await h.token('SUPPLIER', 'supplier-org', 'supplier-1');
  supplier2 = await h.token('SUPPLIER', 'supplier-org-2', 'supplier-2');
});
afterAll(async () => h.close());
beforeEach(() => {
  h.faults.beforeOutboxWrite = undefined;
});

async function createDraft(body: Record<string, unknown> = draftBody()): Promise<string> {
  const res = await h.app.inject({ method: 'POST', url: '/api/v1/tenders', headers: bearer(officer), payload: body });
  return expectStatus(res, 201).id as string;
}

async function post(url: string, token: string, payload?: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  const options: InjectOptions = { method: 'POST', url, headers: { ...bearer(token), ...headers } };
  if (payload !== undefined) options.payload = payload as InjectOptions['payload'];
  return h.app.inject(options);
}

async function domainSnapshot(tenderId: string) {
  const tender = await h.db.pool.query('SELECT status, version, awarded_bid_id, closed_at, cancel_reason FROM tenders WHERE id = $1', [tenderId]);
  const bids = await h.db.pool.query('SELECT id FROM bids WHERE tender_id = $1 ORDER BY id', [tenderId]);
  return { tender: tender.rows[0], bids: bids.rows };
}

describe('each command writes exactly one valid outbox event', () => {
  it('walks create -> update -> publish -> bid -> close -> award', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const created = await h.app.inject({
      method: 'POST',
      url: '/api/v1/tenders',
      headers: { ...bearer(officer), traceparent, 'x-request-id': 'req-create-1' },
      payload: draftBody(),
    });
    const tender = expectStatus(created, 201);
    const id = tender.id as string;
    expect(tender).toMatchObject({ status: 'draft', version: 1, orgId: 'buyer-org', createdBy: 'officer-1' });
    expect(tender.budget).toEqual({ amount: '125000.00', currency: 'GEL' });

    const updated = await h.app.inject({
      method: 'PATCH',
      url: `/api/v1/tenders/${id}`,
      headers: bearer(officer),
      payload: { title: 'Road repair (phase 1)', budget: { amount: '99000.5', currency: 'GEL' } },
    });
    expect(expectStatus(updated, 200)).toMatchObject({ title: 'Road repair (phase 1)', version: 2, budget: { amount: '99000.50' } });

    expect(expectStatus(await post(`/api/v1/tenders/${id}/publish`, officer), 200)).toMatchObject({ status: 'published', version: 3 });
    const bid = expectStatus(await post(`/api/v1/tenders/${id}/bids`, supplier, { amount: { amount: '95000', currency: 'GEL' }, note: 'fast' }), 201);
    expect(bid).toMatchObject({ tenderId: id, supplierOrgId: 'supplier-org', submittedBy: 'supplier-1', amount: { amount: '95000.00' } });
    expect(expectStatus(await post(`/api/v1/tenders/${id}/close`, officer), 200)).toMatchObject({ status: 'closed', version: 4 });
    expect(expectStatus(await post(`/api/v1/tenders/${id}/award`, officer, { bidId: bid.id }), 200)).toMatchObject({
      status: 'awarded',
      awardedBidId: bid.id,
      version: 5,
    });

    const rows = await h.outbox(id);
    expect(rows.map((r) => `${r.event_type}.v${r.event_version}`)).toEqual([
      'kvary.tenders.tender.created.v1',
      'kvary.tenders.tender.updated.v1',
      'kvary.tenders.tender.published.v1',
      'kvary.tenders.tender.bid-submitted.v1',
      'kvary.tenders.tender.closed.v1',
      'kvary.tenders.tender.awarded.v1',
    ]);
    for (const row of rows) {
      expect(row).toMatchObject({ aggregate_type: 'tender', aggregate_id: id, topic: TENDERS_TOPIC, source: TENDERS_SOURCE });
      // Every stored payload satisfies its shared contract.
      const payload = parseEvent(ceType(row.event_type, row.event_version), row.payload);
      expect(payload).toMatchObject({ tenderId: id, orgId: 'buyer-org' });
      expect(row.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(row.headers['x-request-id']).toBeTruthy();
    }
    const [createdRow, updatedRow, , bidRow, closedRow, awardedRow] = rows;
    // A caller's valid traceparent is kept; without one a new trace starts.
    expect(createdRow?.headers).toEqual({ traceparent, 'x-request-id': 'req-create-1' });
    expect(updatedRow?.headers.traceparent).not.toBe(traceparent);
    expect(createdRow?.payload).toMatchObject({ actorId: 'officer-1', status: 'draft', tenderVersion: 1 });
    expect(updatedRow?.payload.changes).toEqual({ title: 'Road repair (phase 1)', budget: { amount: '99000.50', currency: 'GEL' } });
    expect(bidRow?.payload).toMatchObject({ actorId: 'supplier-1', bidId: bid.id, supplierOrgId: 'supplier-org', amount: { amount: '95000.00' } });
    expect(closedRow?.payload).toMatchObject({ bidCount: 1, tenderVersion: 4 });
    expect(awardedRow?.payload).toMatchObject({ awardedBidId: bid.id, supplierOrgId: 'supplier-org', tenderVersion: 5 });
  });

  it('cancel writes one cancelled event with the reason and the previous status', async () => {
    const id = await createDraft();
    await post(`/api/v1/tenders/${id}/publish`, officer);
    const res = await post(`/api/v1/tenders/${id}/cancel`, officer, { reason: 'budget withdrawn' });
    expect(expectStatus(res, 200)).toMatchObject({ status: 'cancelled', cancelReason: 'budget withdrawn' });
    const rows = await h.outbox(id);
    expect(rows).toHaveLength(3);
    expect(rows[2]).toMatchObject({
      event_type: 'kvary.tenders.tender.cancelled',
      event_version: 1,
      payload: { previousStatus: 'published', reason: 'budget withdrawn', status: 'cancelled' },
    });
  });

  it('an ignored traceparent header (invalid) is replaced by a fresh one', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/tenders',
      headers: { ...bearer(officer), traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' },
      payload: draftBody(),
    });
    const id = expectStatus(res, 201).id as string;
    const [row] = await h.outbox(id);
    expect(row?.headers.traceparent).toMatch(/^00-(?!0{32})[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
});

describe('atomicity', () => {
  it('a command failing after its domain write leaves no domain change and no outbox row', async () => {
    const id = await createDraft();
    await post(`/api/v1/tenders/${id}/publish`, officer);
    await post(`/api/v1/tenders/${id}/bids`, supplier, { amount: { amount: '10', currency: 'GEL' } });
    const before = await domainSnapshot(id);
    const eventsBefore = await h.outbox(id);

    h.faults.beforeOutboxWrite = (event) => {
      throw new Error(`injected failure before writing ${event}`);
    };
    const close = await post(`/api/v1/tenders/${id}/close`, officer);
    expect(close.statusCode).toBe(500);
    expect(close.json()).toEqual({ error: { code: 'INTERNAL', message: 'Internal server error' } });
    const bid = await post(`/api/v1/tenders/${id}/bids`, supplier2, { amount: { amount: '11', currency: 'GEL' } });
    expect(bid.statusCode).toBe(500);

    expect(await domainSnapshot(id)).toEqual(before);
    expect(await h.outbox(id)).toEqual(eventsBefore);

    h.faults.beforeOutboxWrite = undefined;
    expect(expectStatus(await post(`/api/v1/tenders/${id}/close`, officer), 200)).toMatchObject({ status: 'closed' });
    expect(await h.outbox(id)).toHaveLength(eventsBefore.length + 1);
  });

  it('a refused command (bid not on this tender) changes nothing', async () => {
    const id = await createDraft();
    await post(`/api/v1/tenders/${id}/publish`, officer);
    await post(`/api/v1/tenders/${id}/close`, officer);
    const before = await domainSnapshot(id);
    const res = await post(`/api/v1/tenders/${id}/award`, officer, { bidId: '9b2d7a52-6a0e-4f5e-8a53-2f3d0b0b7c11' });
    expect(res.statusCode).toBe(422);
    expect(res.json().error.code).toBe('BID_NOT_FOUND');
    expect(await domainSnapshot(id)).toEqual(before);
    expect(await h.outbox(id)).toHaveLength(3);
  });
});

describe('state machine over HTTP', () => {
  it('answers 409 ILLEGAL_TRANSITION with a clear message and writes no event', async () => {
    const id = await createDraft();
    await post(`/api/v1/tenders/${id}/publish`, officer);
    await post(`/api/v1/tenders/${id}/close`, officer);
    const res = await post(`/api/v1/tenders/${id}/publish`, officer);
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ error: { code: 'ILLEGAL_TRANSITION', message: 'cannot publish a tender in status closed' } });
    expect((await post(`/api/v1/tenders/${id}/bids`, supplier, { amount: { amount: '1', currency: 'GEL' } })).json().error).toEqual({
      code: 'ILLEGAL_TRANSITION',
      message: 'cannot submit a bid on a tender in status closed',
    });
    const patch = await h.app.inject({ method: 'PATCH', url: `/api/v1/tenders/${id}`, headers: bearer(officer), payload: { title: 'x' } });
    expect(patch.statusCode).toBe(409);
    expect((await post(`/api/v1/tenders/${id}/award`, officer, { bidId: id })).statusCode).toBe(422);
    await post(`/api/v1/tenders/${id}/cancel`, officer, { reason: 'r' });
    expect((await post(`/api/v1/tenders/${id}/cancel`, officer, { reason: 'again' })).json().error.message).toBe(
      'cannot cancel a tender in status cancelled',
    );
    expect((await h.outbox(id)).map((r) => r.event_type.split('.').at(-1))).toEqual(['created', 'published', 'closed', 'cancelled']);
  });

  it('refuses bids after the deadline, a second bid per organisation and a wrong currency', async () => {
    const id = await createDraft(draftBody({ deadline: new Date(Date.now() + 3_600_000).toISOString() }));
    await post(`/api/v1/tenders/${id}/publish`, officer);
    const first = await post(`/api/v1/tenders/${id}/bids`, supplier, { amount: { amount: '10', currency: 'GEL' } });
    expect(first.statusCode).toBe(201);
    const second = await post(`/api/v1/tenders/${id}/bids`, supplier, { amount: { amount: '9', currency: 'GEL' } });
    expect(second.statusCode).toBe(409);
    expect(second.json().error.code).toBe('BID_ALREADY_SUBMITTED');
    const usd = await post(`/api/v1/tenders/${id}/bids`, supplier2, { amount: { amount: '9', currency: 'USD' } });
    expect(usd.statusCode).toBe(400);
    expect(usd.json().error).toMatchObject({ code: 'CURRENCY_MISMATCH', field: 'body.amount.currency' });
    h.advance(2 * 3_600_000);
    try {
      const late = await post(`/api/v1/tenders/${id}/bids`, supplier2, { amount: { amount: '9', currency: 'GEL' } });
      expect(late.statusCode).toBe(409);
      expect(late.json().error.code).toBe('BIDDING_CLOSED');
    } finally {
      h.advance(-2 * 3_600_000);
    }
    expect(await h.outbox(id)).toHaveLength(3);
  });

  it('refuses a deadline in the past', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/tenders',
      headers: bearer(officer),
      payload: draftBody({ deadline: '2020-01-01T00:00:00Z' }),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'DEADLINE_IN_PAST', field: 'body.deadline' });
  });
});

describe('Idempotency-Key', () => {
  it('replays the first response for the same key and body, writing one event', async () => {
    const body = draftBody({ title: 'idempotent create' });
    const headers = { ...bearer(officer), 'idempotency-key': 'create-abc-1' };
    const first = await h.app.inject({ method: 'POST', url: '/api/v1/tenders', headers, payload: body });
    const second = await h.app.inject({ method: 'POST', url: '/api/v1/tenders', headers, payload: { ...body } });
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(second.statusCode).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json()).toEqual(first.json());
    const { rows } = await h.db.pool.query("SELECT count(*)::int AS n FROM tenders WHERE title = 'idempotent create'");
    expect(rows[0].n).toBe(1);
    expect(await h.outbox(first.json().id)).toHaveLength(1);
  });

  it('answers 422 IDEMPOTENCY_KEY_REUSED for the same key with a different body', async () => {
    const headers = { ...bearer(officer), 'idempotency-key': 'create-abc-2' };
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/tenders', headers, payload: draftBody({ title: 'one' }) })).statusCode).toBe(201);
    const other = await h.app.inject({ method: 'POST', url: '/api/v1/tenders', headers, payload: draftBody({ title: 'two' }) });
    expect(other.statusCode).toBe(422);
    expect(other.json().error.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('scopes keys per user and route', async () => {
    const id = await createDraft();
    const key = { 'idempotency-key': 'shared-key' };
    const publish = await post(`/api/v1/tenders/${id}/publish`, officer, undefined, key);
    expect(publish.statusCode).toBe(200);
    // Same key on another route is a different scope: it runs.
    const close = await post(`/api/v1/tenders/${id}/close`, officer, undefined, key);
    expect(close.statusCode).toBe(200);
    expect(close.headers['idempotent-replayed']).toBeUndefined();
    // Same key and route for another user: its own scope, so it runs (and is refused on its merits).
    const otherOfficer = await h.token('PROCUREMENT_OFFICER', 'buyer-org', 'officer-2');
    const replay = await post(`/api/v1/tenders/${id}/publish`, otherOfficer, undefined, key);
    expect(replay.statusCode).toBe(409);
  });

  it('two concurrent identical requests produce one tender and one event', async () => {
    const body = draftBody({ title: 'concurrent create' });
    const headers = { ...bearer(officer), 'idempotency-key': 'concurrent-1' };
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => h.app.inject({ method: 'POST', url: '/api/v1/tenders', headers, payload: body })),
    );
    expect(responses.map((r) => r.statusCode)).toEqual([201, 201, 201, 201, 201]);
    expect(new Set(responses.map((r) => r.json().id)).size).toBe(1);
    expect(responses.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(4);
    const { rows } = await h.db.pool.query("SELECT count(*)::int AS n FROM tenders WHERE title = 'concurrent create'");
    expect(rows[0].n).toBe(1);
    expect(await h.outbox(responses[0]?.json().id)).toHaveLength(1);
  });

  it('a failed command stores no key, so a retry runs', async () => {
    const headers = { 'idempotency-key': 'retry-after-failure' };
    const id = await createDraft();
    h.faults.beforeOutboxWrite = () => {
      throw new Error('injected');
    };
    expect((await post(`/api/v1/tenders/${id}/publish`, officer, undefined, headers)).statusCode).toBe(500);
    h.faults.beforeOutboxWrite = undefined;
    const retry = await post(`/api/v1/tenders/${id}/publish`, officer, undefined, headers);
    expect(retry.statusCode).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(await h.outbox(id)).toHaveLength(2);
  });

  it('refuses an over-long key', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/tenders',
      headers: { ...bearer(officer), 'idempotency-key': 'k'.repeat(201) },
      payload: draftBody(),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.field).toBe('headers.idempotency-key');
  });
});

describe('metrics', () => {
  it('counts commands by outcome', async () => {
    const metric = (await h.metrics.getMetricsAsJSON()).find((m) => m.name === 'svc_tenders_commands_total');
    const values = (metric?.values ?? []) as { labels: Record<string, string>; value: number }[];
    expect(values.find((v) => v.labels.command === 'create' && v.labels.outcome === 'ok')?.value).toBeGreaterThan(0);
    expect(values.find((v) => v.labels.outcome === 'replayed')?.value).toBeGreaterThan(0);
    expect(values.find((v) => v.labels.outcome === 'failed')?.value).toBeGreaterThan(0);
  });
});

describe('idempotency key retention', () => {
  it('purges keys older than the retention in batches and keeps fresh ones', async () => {
    await h.db.pool.query(
      `INSERT INTO tenders_idempotency_keys (user_id, route, idempotency_key, request_hash, response_status, response_body, created_at)
       SELECT 'old-user', 'POST /x', 'k' || g, 'h', 200, '{}', now() - interval '25 hours' FROM generate_series(1, 5) g`,
    );
    const before = await h.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM tenders_idempotency_keys WHERE user_id <> 'old-user'");
    expect(await purgeIdempotencyKeys(h.db.pool, 24, 2)).toBe(5);
    const after = await h.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tenders_idempotency_keys');
    expect(after.rows[0]?.n).toBe(before.rows[0]?.n);
    expect(before.rows[0]?.n).toBeGreaterThan(0);
  });
});
