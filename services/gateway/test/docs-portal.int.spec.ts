// The read-only documentation portal through the real gateway: the index with metadata and
// missing fields, one document by locale, GUEST access, 405 for writes, id validation (no path
// traversal), re-indexing on change, and the repository's own docs/ folder.
import { cp, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '@kvary/platform/config';
import { configSchema } from '../src/config.js';
import { createDocsPortal } from '../src/docs-portal.js';
import {
  bearer,
  call,
  errorOf,
  rawGet,
  startAuthStandIn,
  startGateway,
  startTendersStandIn,
  token,
  type AuthStandIn,
  type Gateway,
  type TendersStandIn,
} from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(here, 'fixtures/docs');
const REPO_DOCS = path.resolve(here, '../../../docs');

const ALL_REQUIRED = ['Document ID', 'Version', 'Status', 'Owner Role', 'Last Review Date', 'Next Review Date', 'Change Log'];
const READ_ONLY = {
  ka: 'დოკუმენტაციის პორტალი მხოლოდ წასაკითხადაა. რედაქტირებისა და ცვლილების ენდპოინტები გამორთულია.',
  en: 'Documentation portal is read-only. Editing and mutation endpoints are disabled.',
};

interface ListedDoc {
  id: string;
  title: string;
  path: string;
  locale: string;
  locales: string[];
  authoritativeLocale: string;
  metadata: Record<string, unknown>;
  missingMetadata: string[];
  complete: boolean;
}

let auth: AuthStandIn;
let tenders: TendersStandIn;
let gateway: Gateway;
const started: Gateway[] = [];

async function portalGateway(dir: string, options: { recheckMs?: number; now?: () => number } = {}): Promise<Gateway> {
  const g = await startGateway({ authUrl: auth.url, tendersUrl: tenders.url }, {}, { docsPortal: createDocsPortal({ dir, recheckMs: options.recheckMs ?? 2000, now: options.now }) });
  started.push(g);
  return g;
}

beforeAll(async () => {
  auth = await startAuthStandIn();
  tenders = await startTendersStandIn();
  gateway = await portalGateway(FIXTURE);
});
afterAll(async () => {
  for (const g of started) await g.close();
  await auth?.close();
  await tenders?.close();
});

const documentsOf = (res: { body: Record<string, unknown> }) => res.body.documents as ListedDoc[];
const byId = (res: { body: Record<string, unknown> }, id: string) => documentsOf(res).find((d) => d.id === id);

describe('GET /api/v1/docs', () => {
  it('lists every document with its metadata and what is missing, for a GUEST (no token)', async () => {
    const res = await call(gateway, 'GET', '/api/v1/docs');
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('content-language')).toBe('ka');
    expect(res.body.readOnly).toBe(true);
    expect(res.body.notice).toBe(READ_ONLY.ka);
    // README.md (not an id), .drafts/ (dot-folder) and guides/handbook.md (duplicate id) are left out.
    expect(documentsOf(res).map((d) => d.id)).toEqual(['glossary', 'handbook', 'incomplete', 'plain']);

    expect(byId(res, 'handbook')).toEqual({
      id: 'handbook',
      title: 'მიმწოდებლის სახელმძღვანელო',
      path: 'handbook.md',
      locale: 'ka',
      locales: ['en', 'ka'],
      authoritativeLocale: 'ka',
      metadata: {
        documentId: 'KES-FIX-001',
        version: '1.0',
        status: 'Approved',
        ownerRole: 'DOCUMENT_CUSTODIAN',
        lastReviewDate: '2026-01-10',
        nextReviewDate: '2026-03-11',
        changeLog: ['2026-01-10 1.0 პირველი ვერსია.'],
        title: 'მიმწოდებლის სახელმძღვანელო',
        category: '80_chain',
        reviewCycleDays: 60,
        approvalAuthority: ['GOVERNANCE_ADMIN', 'CHAIN_OFFICER'],
      },
      missingMetadata: [],
      complete: true,
    });

    expect(byId(res, 'incomplete')).toMatchObject({
      path: 'guides/incomplete.md',
      locale: 'en',
      locales: ['en'],
      authoritativeLocale: 'en',
      metadata: { version: '0.3.0', status: null, changeLog: null, documentId: null },
      // An empty string and an empty list count as missing.
      missingMetadata: ['Document ID', 'Status', 'Owner Role', 'Last Review Date', 'Next Review Date', 'Change Log'],
      complete: false,
    });

    const plain = byId(res, 'plain');
    expect(plain).toMatchObject({ title: 'Plain notes', path: 'notes/plain.md', locales: ['en'], missingMetadata: ALL_REQUIRED, complete: false });
    expect(Object.values(plain?.metadata ?? { x: 1 }).every((v) => v === null)).toBe(true);

    // An original whose front matter says `locale: ka` is the Georgian (and authoritative) version.
    expect(byId(res, 'glossary')).toMatchObject({
      locales: ['ka'],
      authoritativeLocale: 'ka',
      complete: true,
      metadata: { changeLog: [{ date: '2026-02-01', version: '2.1.0', change: 'ტერმინები დაემატა.' }] },
    });
  });

  it('shows each document in the caller’s locale when it exists, with the notice in that language', async () => {
    const res = await call(gateway, 'GET', '/api/v1/docs', { headers: { 'accept-language': 'en-US,en;q=0.9' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-language')).toBe('en');
    expect(res.body.notice).toBe(READ_ONLY.en);
    expect(byId(res, 'handbook')).toMatchObject({ title: 'Supplier handbook', locale: 'en', authoritativeLocale: 'ka', complete: true });
    expect(byId(res, 'handbook')?.metadata.approvalAuthority).toEqual(['GOVERNANCE_ADMIN', 'CHAIN_OFFICER']);
    expect(byId(res, 'glossary')).toMatchObject({ locale: 'ka' });
  });

  it('refuses unknown query parameters with a localized 400', async () => {
    const res = await call(gateway, 'GET', '/api/v1/docs?lang=en&edit=1');
    expect(res.status).toBe(400);
    expect(errorOf(res)).toEqual({ code: 'DOCS_INVALID_QUERY', message: 'invalid documentation query parameter edit; only lang and locale are accepted' });
  });
});

describe('GET /api/v1/docs/:id', () => {
  it('answers Georgian by default: the authoritative version, no notice', async () => {
    const res = await call(gateway, 'GET', '/api/v1/docs/handbook');
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('content-language')).toBe('ka');
    expect(res.body).toMatchObject({
      id: 'handbook',
      title: 'მიმწოდებლის სახელმძღვანელო',
      path: 'handbook.ka.md',
      locale: 'ka',
      requestedLocale: 'ka',
      availableLocales: ['en', 'ka'],
      authoritativeLocale: 'ka',
      authoritative: true,
      notice: null,
      missingMetadata: [],
      complete: true,
    });
    expect(res.body.content).toBe('# მიმწოდებლის სახელმძღვანელო\n\nროგორ პოულობს მიმწოდებელი ტენდერს და როგორ აკეთებს წინადადებას.\n');
  });

  it.each<{ name: string; path: string; headers: Record<string, string> }>([
    { name: '?lang=en', path: '/api/v1/docs/handbook?lang=en', headers: {} },
    { name: 'Accept-Language en', path: '/api/v1/docs/handbook', headers: { 'accept-language': 'en-GB, ka;q=0.5' } },
    { name: 'cookie kes_locale=en', path: '/api/v1/docs/handbook', headers: { cookie: 'kes_locale=en' } },
    { name: 'query beats Accept-Language', path: '/api/v1/docs/handbook?locale=en', headers: { 'accept-language': 'ka' } },
  ])('answers the English translation for $name, saying the Georgian version prevails', async ({ path: url, headers }) => {
    const res = await call(gateway, 'GET', url, { headers });
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('content-language')).toBe('en');
    expect(res.body).toMatchObject({
      title: 'Supplier handbook',
      path: 'handbook.md',
      locale: 'en',
      requestedLocale: 'en',
      authoritativeLocale: 'ka',
      authoritative: false,
    });
    expect(res.body.notice).toMatch(/Georgian version prevails/);
    expect(res.body.content).toBe('# Supplier handbook\n\nHow a supplier finds a tender and places a bid.\n');
  });

  it('falls back to the original when the caller’s language has no version, and says so in that language', async () => {
    const ka = await call(gateway, 'GET', '/api/v1/docs/incomplete');
    expect(ka.status).toBe(200);
    expect(ka.headers.get('content-language')).toBe('en');
    expect(ka.body).toMatchObject({
      locale: 'en',
      requestedLocale: 'ka',
      availableLocales: ['en'],
      authoritativeLocale: 'en',
      authoritative: true,
      notice: 'ამ დოკუმენტს ქართული ვერსია არ აქვს; ნაჩვენებია ინგლისური ვერსია.',
      complete: false,
    });
    expect(ka.body.missingMetadata).toEqual(['Document ID', 'Status', 'Owner Role', 'Last Review Date', 'Next Review Date', 'Change Log']);

    const en = await call(gateway, 'GET', '/api/v1/docs/glossary?lang=en');
    expect(en.headers.get('content-language')).toBe('ka');
    expect(en.body).toMatchObject({
      locale: 'ka',
      requestedLocale: 'en',
      authoritative: true,
      notice: 'This document has no English version; showing the Georgian version.',
    });
  });

  it('serves a document without front matter whole, with every field missing', async () => {
    const res = await call(gateway, 'GET', '/api/v1/docs/plain?lang=en');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ title: 'Plain notes', locale: 'en', notice: null, missingMetadata: ALL_REQUIRED, complete: false });
    expect(res.body.content).toBe('# Plain notes\n\nA document without any front matter.\n');
  });

  it('is open to GUEST and to signed-in callers alike; an invalid token is still refused', async () => {
    expect((await call(gateway, 'GET', '/api/v1/docs/handbook')).status).toBe(200);
    expect((await call(gateway, 'HEAD', '/api/v1/docs/handbook')).status).toBe(200);
    const supplier = await token(auth.key, ['SUPPLIER']);
    expect((await call(gateway, 'GET', '/api/v1/docs/handbook', { headers: bearer(supplier) })).status).toBe(200);
    const forged = await call(gateway, 'GET', '/api/v1/docs', { headers: bearer('not-a-token') });
    expect(forged.status).toBe(401);
    expect(errorOf(forged).code).toBe('INVALID_TOKEN');
  });

  it('answers 404 DOCS_NOT_FOUND for unknown ids, hidden files and names that are not ids', async () => {
    for (const id of ['nope', 'secret', 'readme']) {
      const ka = await call(gateway, 'GET', `/api/v1/docs/${id}`);
      expect(ka.status, id).toBe(404);
      expect(errorOf(ka)).toEqual({ code: 'DOCS_NOT_FOUND', message: `დოკუმენტი „${id}“ ვერ მოიძებნა` });
    }
    const en = await call(gateway, 'GET', '/api/v1/docs/nope?lang=en');
    expect(errorOf(en)).toEqual({ code: 'DOCS_NOT_FOUND', message: 'no document "nope"' });
  });
});

describe('ids are validated, never used as paths', () => {
  const bad = [
    '..',
    '.',
    '%2e%2e',
    '%2e%2e%2f',
    '..%2f..%2fpackage.json',
    '..%2F..%2F..%2F..%2Fetc%2Fpasswd',
    '%2e%2e%5c%2e%2e%5cpackage.json',
    'a%2Fb',
    'A',
    'Handbook',
    'x.md',
    'handbook.ka',
    'handbook.md',
    '-x',
    'a_b',
    'a%00',
    encodeURIComponent('ა'),
    'a'.repeat(82),
  ];

  it.each(bad)('GET /api/v1/docs/%s -> 400 DOCS_INVALID_ID', async (id) => {
    const res = await rawGet(gateway, `/api/v1/docs/${id}`);
    expect(res.status, res.body).toBe(400);
    expect(JSON.parse(res.body)).toEqual({
      error: { code: 'DOCS_INVALID_ID', message: 'დოკუმენტის იდენტიფიკატორი არასწორია: დასაშვებია მხოლოდ პატარა ლათინური ასოები, ციფრები და დეფისი' },
    });
  });

  it('localizes DOCS_INVALID_ID', async () => {
    const res = await rawGet(gateway, '/api/v1/docs/..%2f..%2fpackage.json?lang=en');
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'DOCS_INVALID_ID', message: 'invalid document id: only lower-case letters, digits and hyphens are allowed' } });
  });

  it('accepts the longest valid id (81 characters) as an id', async () => {
    expect((await rawGet(gateway, `/api/v1/docs/${'a'.repeat(81)}`)).status).toBe(404);
  });

  it('refuses an unencoded slash before the portal sees it (no route in the permission table)', async () => {
    for (const url of ['/api/v1/docs/a/b', '/api/v1/docs/../../package.json', '/api/v1/docs/guides/incomplete']) {
      const res = await rawGet(gateway, url);
      expect(res.status, `${url}: ${res.body}`).toBe(404);
      expect(JSON.parse(res.body).error.code).toBe('ROUTE_NOT_PERMITTED');
    }
  });
});

describe('read-only', () => {
  const writes = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;
  const urls = ['/api/v1/docs', '/api/v1/docs/handbook', '/api/v1/docs/nope', '/api/v1/docs/..%2fx'];

  it.each(writes)('%s answers 405 DOCS_READ_ONLY in Georgian and English, even for GOVERNANCE_ADMIN', async (method) => {
    const admin = await token(auth.key, ['GOVERNANCE_ADMIN', 'DOCUMENT_CUSTODIAN']);
    for (const url of urls) {
      const body = method === 'DELETE' ? undefined : { content: '# changed' };
      const ka = await call(gateway, method, url, { body });
      expect(ka.status, `${method} ${url}`).toBe(405);
      expect(ka.headers.get('allow')).toBeNull();
      expect(errorOf(ka)).toEqual({ code: 'DOCS_READ_ONLY', message: 'დოკუმენტაციის პორტალი მხოლოდ წასაკითხადაა; რედაქტირება გამორთულია', allow: 'GET, HEAD' });
      const en = await call(gateway, method, `${url}?lang=en`, { headers: bearer(admin), body });
      expect(en.status).toBe(405);
      expect(errorOf(en)).toEqual({ code: 'DOCS_READ_ONLY', message: 'documentation portal is read-only; editing and mutation endpoints are disabled', allow: 'GET, HEAD' });
    }
    const after = await call(gateway, 'GET', '/api/v1/docs/handbook?lang=en');
    expect(after.body.content).toContain('How a supplier finds a tender');
  });
});

describe('re-indexing', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kes-docs-'));
    await cp(FIXTURE, dir, { recursive: true });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('picks up added, changed and removed files once the recheck interval has passed', async () => {
    let clock = 1_000_000;
    const g = await portalGateway(dir, { recheckMs: 2000, now: () => clock });
    const ids = async () => documentsOf(await call(g, 'GET', '/api/v1/docs')).map((d) => d.id);
    expect(await ids()).toEqual(['glossary', 'handbook', 'incomplete', 'plain']);

    await writeFile(path.join(dir, 'notes/new-page.md'), '---\ntitle: New page\n---\n\nfresh\n');
    clock += 1000;
    expect(await ids(), 'within the interval the index is trusted').not.toContain('new-page');
    clock += 1000;
    expect(await ids()).toContain('new-page');

    await writeFile(path.join(dir, 'notes/new-page.md'), '---\ntitle: Renamed page\n---\n\nchanged and longer\n');
    clock += 2000;
    const changed = await call(g, 'GET', '/api/v1/docs/new-page');
    expect(changed.body).toMatchObject({ title: 'Renamed page', content: 'changed and longer\n' });

    await unlink(path.join(dir, 'notes/new-page.md'));
    clock += 2000;
    expect((await call(g, 'GET', '/api/v1/docs/new-page')).status).toBe(404);
  });

  it('serves an empty index when the folder does not exist', async () => {
    const g = await portalGateway(path.join(dir, 'missing'));
    const res = await call(g, 'GET', '/api/v1/docs');
    expect(res.status).toBe(200);
    expect(res.body.documents).toEqual([]);
  });
});

describe('the repository docs/ folder', () => {
  it('is the default GATEWAY_DOCS_DIR', () => {
    expect(parseConfig(configSchema, {}).GATEWAY_DOCS_DIR).toBe(REPO_DOCS);
    expect(parseConfig(configSchema, { GATEWAY_DOCS_DIR: 'relative/docs' }).GATEWAY_DOCS_DIR).toBe(path.resolve('relative/docs'));
  });

  it('lists outbox, architecture and dev-users with complete metadata', async () => {
    const g = await portalGateway(REPO_DOCS);
    const res = await call(g, 'GET', '/api/v1/docs?lang=en');
    expect(res.status).toBe(200);
    for (const id of ['outbox', 'architecture', 'dev-users']) {
      const doc = byId(res, id);
      expect(doc, id).toBeDefined();
      expect(doc?.missingMetadata, id).toEqual([]);
      expect(doc?.complete, id).toBe(true);
      expect(doc?.path).toBe(`${id}.md`);
    }
    expect(byId(res, 'architecture')).toMatchObject({ locales: ['en', 'ka'], authoritativeLocale: 'ka', locale: 'en' });

    const ka = await call(g, 'GET', '/api/v1/docs/architecture');
    expect(ka.body).toMatchObject({ locale: 'ka', path: 'architecture.ka.md', authoritative: true, complete: true });
    expect(ka.body.content).toMatch(/^# KES პლატფორმის არქიტექტურა\n/);
  });
});
