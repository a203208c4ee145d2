// The real svc-tenders (its buildApp on a per-file clone of the migrated database, listening on
// port 0) behind the gateway: a token verified at the edge creates and reads a tender, the
// service still enforces visibility per row, and the gateway's trace reaches the outbox row.
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { draftBody, startHarness, type Harness } from '../../svc-tenders/test/harness.js';
import { bearer, call, startAuthStandIn, startGateway, token, type AuthStandIn, type Gateway } from './harness.js';

let h: Harness;
let auth: AuthStandIn;
let gateway: Gateway;

beforeAll(async () => {
  h = await startHarness('gwtenders');
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = h.app.server.address() as AddressInfo;
  // The auth stand-in publishes the key svc-tenders trusts, as svc-auth would.
  auth = await startAuthStandIn(h.key);
  gateway = await startGateway({ authUrl: auth.url, tendersUrl: `http://127.0.0.1:${port}` });
});
afterAll(async () => {
  await gateway?.close();
  await auth?.close();
  await h?.close();
});

describe('gateway -> real svc-tenders', () => {
  it('creates a tender with a bearer token and reads it back; guests see only published tenders', async () => {
    const officer = await token(h.key, ['PROCUREMENT_OFFICER'], 'buyer-org', 'officer-1');
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const created = await call(gateway, 'POST', '/api/v1/tenders', {
      headers: { ...bearer(officer), traceparent, 'x-request-id': 'gw-real-1' },
      body: draftBody(),
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ status: 'draft', orgId: 'buyer-org', createdBy: 'officer-1' });
    const id = created.body.id as string;

    const read = await call(gateway, 'GET', `/api/v1/tenders/${id}`, { headers: bearer(officer) });
    expect(read.status, read.text).toBe(200);
    expect(read.body).toMatchObject({ id, status: 'draft' });

    // Drafts are visible to the buyer organisation only: the service decides, per row.
    expect((await call(gateway, 'GET', `/api/v1/tenders/${id}`)).status).toBe(404);
    const published = await call(gateway, 'POST', `/api/v1/tenders/${id}/publish`, { headers: bearer(officer) });
    expect(published.status, published.text).toBe(200);
    const asGuest = await call(gateway, 'GET', `/api/v1/tenders/${id}`);
    expect(asGuest.status).toBe(200);
    expect(asGuest.body).toMatchObject({ id, status: 'published' });

    // The outbox row carries the gateway's span of the caller's trace and the request id.
    const [row] = await h.outbox(id);
    expect(row?.headers['x-request-id']).toBe('gw-real-1');
    expect(row?.headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(row?.headers.traceparent).toBe(created.headers.get('traceparent'));
  });

  it('stops a supplier at the gateway before svc-tenders sees the command', async () => {
    const supplier = await token(h.key, ['SUPPLIER'], 'supplier-org', 'supplier-1');
    const before = (await h.outbox()).length;
    const res = await call(gateway, 'POST', '/api/v1/tenders', { headers: bearer(supplier), body: draftBody() });
    expect(res.status).toBe(403);
    expect((await h.outbox()).length).toBe(before);
  });
});
