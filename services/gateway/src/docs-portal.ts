// The read-only documentation portal: GET /api/v1/docs (every document with its metadata) and
// GET /api/v1/docs/:id (one document in the caller's locale) over the markdown files of a folder.
// Request input only ever looks up an in-memory index; no file path is built from it.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyBaseLogger, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { docsNotice, gatewayError } from './i18n.js';
import { LOCALES, toLocale, type Locale } from './locale.js';
import { DOCS_PREFIX } from './permissions.js';

/** A document id: the file name without `.md` (and without a locale suffix). */
export const DOC_ID = /^[a-z0-9][a-z0-9-]{0,80}$/;

/** The locale of a file without a locale suffix and without a `locale` front-matter field. */
export const DEFAULT_DOC_LOCALE: Locale = 'en';

/** Larger files are left out of the index (and logged): the portal keeps every document in memory. */
const MAX_FILE_BYTES = 1024 * 1024;

/** Metadata every document must carry, with the names readers see ("Metadata incomplete: ..."). */
export const REQUIRED_METADATA = [
  ['documentId', 'Document ID'],
  ['version', 'Version'],
  ['status', 'Status'],
  ['ownerRole', 'Owner Role'],
  ['lastReviewDate', 'Last Review Date'],
  ['nextReviewDate', 'Next Review Date'],
  ['changeLog', 'Change Log'],
] as const;

/** A front-matter value as parsed with the YAML failsafe schema: every scalar stays a string. */
export type FrontMatterValue = string | FrontMatterValue[] | { [key: string]: FrontMatterValue };

export interface DocMetadata {
  documentId: string | null;
  version: string | null;
  status: string | null;
  ownerRole: string | null;
  lastReviewDate: string | null;
  nextReviewDate: string | null;
  changeLog: FrontMatterValue[] | null;
  title: string | null;
  category: string | null;
  reviewCycleDays: number | null;
  approvalAuthority: string[] | null;
}

interface Variant {
  locale: Locale;
  /** Relative to the docs folder, with `/` separators. */
  path: string;
  title: string;
  metadata: DocMetadata;
  missingMetadata: string[];
  content: string;
}

interface DocEntry {
  id: string;
  /** The folder (relative to the docs folder) all of the document's files live in. */
  folder: string;
  /** The file without a locale suffix, when there is one. */
  original: Variant | undefined;
  variants: Map<Locale, Variant>;
}

interface DocsIndex {
  /** By id, in id order. */
  documents: Map<string, DocEntry>;
}

// ---------------------------------------------------------------------------------------------
// Parsing one file

const FRONT_MATTER = /^---[ \t]*\r?\n(?:([\s\S]*?)\r?\n)?(?:---|\.\.\.)[ \t]*(?:\r?\n|$)/;

/** Splits YAML front matter from the markdown body. Invalid YAML counts as no metadata. */
export function parseFrontMatter(source: string): { data: Record<string, FrontMatterValue> | null; body: string; error?: string } {
  const text = source.startsWith('\uFEFF') ? source.slice(1) : source;
  const match = FRONT_MATTER.exec(text);
  if (!match) return { data: null, body: text };
  const body = text.slice(match[0].length).replace(/^(?:\r?\n)+/, '');
  let data: unknown;
  try {
    // failsafe: `version: 1.0` stays "1.0" and dates stay as written, nothing is coerced.
    data = parseYaml(match[1] ?? '', { schema: 'failsafe' });
  } catch (error) {
    return { data: null, body, error: (error as Error).message };
  }
  if (data === null || data === undefined || data === '') return { data: {}, body };
  if (typeof data !== 'object' || Array.isArray(data)) return { data: null, body, error: 'front matter is not a mapping' };
  return { data: data as Record<string, FrontMatterValue>, body };
}

function text(value: FrontMatterValue | undefined): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
}

function nonEmpty(value: FrontMatterValue): boolean {
  if (typeof value === 'string') return value.trim() !== '';
  if (Array.isArray(value)) return value.length > 0;
  return Object.keys(value).length > 0;
}

/** A list field written as a YAML list or as one comma-separated string. */
function names(value: FrontMatterValue | undefined): string[] | null {
  const items = Array.isArray(value) ? value.map((v) => text(v)) : typeof value === 'string' ? value.split(',').map((v) => text(v)) : [];
  const list = items.filter((v): v is string => v !== null);
  return list.length > 0 ? list : null;
}

/** A list of entries (strings or mappings), or one string standing for a one-entry list. */
function entries(value: FrontMatterValue | undefined): FrontMatterValue[] | null {
  if (typeof value === 'string') return value.trim() !== '' ? [value.trim()] : null;
  const list = Array.isArray(value) ? value.filter(nonEmpty) : [];
  return list.length > 0 ? list : null;
}

export function readMetadata(data: Record<string, FrontMatterValue> | null): { metadata: DocMetadata; missingMetadata: string[] } {
  const get = (key: string) => (data && Object.hasOwn(data, key) ? data[key] : undefined);
  const cycle = text(get('reviewCycleDays'));
  const metadata: DocMetadata = {
    documentId: text(get('documentId')),
    version: text(get('version')),
    status: text(get('status')),
    ownerRole: text(get('ownerRole')),
    lastReviewDate: text(get('lastReviewDate')),
    nextReviewDate: text(get('nextReviewDate')),
    changeLog: entries(get('changeLog')),
    title: text(get('title')),
    category: text(get('category')),
    reviewCycleDays: cycle !== null && /^\d{1,5}$/.test(cycle) ? Number(cycle) : null,
    approvalAuthority: names(get('approvalAuthority')),
  };
  const missingMetadata = REQUIRED_METADATA.filter(([key]) => metadata[key] === null).map(([, label]) => label);
  return { metadata, missingMetadata };
}

/** `outbox.md` -> { id: 'outbox' }, `outbox.ka.md` -> { id: 'outbox', locale: 'ka' }; else undefined. */
export function parseFileName(name: string): { id: string; locale: Locale | undefined } | undefined {
  if (!name.endsWith('.md')) return undefined;
  const stem = name.slice(0, -'.md'.length);
  const dot = stem.lastIndexOf('.');
  const suffix = dot > 0 ? stem.slice(dot + 1) : '';
  const locale = (LOCALES as readonly string[]).includes(suffix) ? (suffix as Locale) : undefined;
  const id = locale ? stem.slice(0, dot) : stem;
  return DOC_ID.test(id) ? { id, locale } : undefined;
}

// ---------------------------------------------------------------------------------------------
// The folder and its index

interface FileInfo {
  /** Relative to the docs folder, with `/` separators. */
  path: string;
  size: number;
  mtimeMs: number;
}

/**
 * Every `.md` file under `root`, in walk order: a folder's files (by name) before its subfolders
 * (by name). Dotfiles, dot-folders, node_modules and symbolic links are skipped.
 */
async function scanFolder(root: string): Promise<FileInfo[] | null> {
  const files: FileInfo[] = [];
  const visit = async (relative: string): Promise<void> => {
    const entries = await readdir(path.join(root, relative), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const folders: string[] = [];
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) folders.push(child);
      else if (entry.isFile() && entry.name.endsWith('.md')) {
        // A file deleted between readdir and stat is simply not there yet/anymore.
        const info = await stat(path.join(root, child)).catch(() => null);
        if (info) files.push({ path: child, size: info.size, mtimeMs: info.mtimeMs });
      }
    }
    for (const folder of folders) await visit(folder);
  };
  try {
    await visit('');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return files;
}

/**
 * Any added, removed, renamed or rewritten file changes it. Stricter than "the newest mtime":
 * deleting a file or copying one in with an old mtime is noticed too.
 */
function fingerprintOf(files: FileInfo[] | null): string {
  return files === null ? 'missing' : files.map((f) => `${f.path}\0${f.size}\0${f.mtimeMs}`).join('\n');
}

async function buildIndex(root: string, files: FileInfo[], log: FastifyBaseLogger): Promise<DocsIndex> {
  const skipped: string[] = [];
  const candidates = files.flatMap((file) => {
    const name = parseFileName(path.posix.basename(file.path));
    if (!name) skipped.push(file.path);
    return name ? [{ file, ...name }] : [];
  });
  const sources = await Promise.all(
    candidates.map(async ({ file }) => {
      if (file.size > MAX_FILE_BYTES) return null;
      return readFile(path.join(root, file.path), 'utf8').catch((error: unknown) => {
        log.warn({ err: error, file: file.path }, 'docs portal: cannot read a document; left out');
        return null;
      });
    }),
  );

  const byId = new Map<string, DocEntry>();
  candidates.forEach(({ file, id, locale: suffixLocale }, i) => {
    const source = sources[i];
    if (source === null || source === undefined) {
      if (file.size > MAX_FILE_BYTES) log.warn({ file: file.path, bytes: file.size, max: MAX_FILE_BYTES }, 'docs portal: document too large; left out');
      return;
    }
    const folder = path.posix.dirname(file.path);
    const existing = byId.get(id);
    if (existing && existing.folder !== folder) {
      log.warn({ id, kept: existing.folder, ignored: file.path }, 'docs portal: duplicate document id in two folders; keeping the first');
      return;
    }
    const { data, body, error } = parseFrontMatter(source);
    if (error) log.warn({ file: file.path, error }, 'docs portal: invalid front matter; the document is listed without metadata');
    const declared = data ? text(data.locale) : null;
    const locale = suffixLocale ?? toLocale(declared) ?? DEFAULT_DOC_LOCALE;
    if (!suffixLocale && declared !== null && !toLocale(declared)) {
      log.warn({ file: file.path, locale: declared }, `docs portal: unsupported front-matter locale; treated as ${DEFAULT_DOC_LOCALE}`);
    }
    const { metadata, missingMetadata } = readMetadata(data);
    const variant: Variant = {
      locale,
      path: file.path,
      title: metadata.title ?? /^#[ \t]+(.+?)[ \t#]*$/m.exec(body)?.[1] ?? id,
      metadata,
      missingMetadata,
      content: body,
    };
    const entry = existing ?? { id, folder, original: undefined, variants: new Map<Locale, Variant>() };
    const clash = entry.variants.get(locale);
    if (clash) {
      log.warn({ id, locale, kept: clash.path, ignored: file.path }, 'docs portal: two files of one document in one locale; keeping the first');
      return;
    }
    entry.variants.set(locale, variant);
    if (!suffixLocale) entry.original = variant;
    byId.set(id, entry);
  });
  if (skipped.length > 0) log.info({ files: skipped }, 'docs portal: markdown files whose names are not document ids are not served');
  return { documents: new Map([...byId].sort(([a], [b]) => (a < b ? -1 : 1))) };
}

/** Georgian when a Georgian version exists, else the original's locale. */
function authoritativeOf(entry: DocEntry): Variant {
  const georgian = entry.variants.get('ka');
  if (georgian) return georgian;
  if (entry.original) return entry.original;
  // Only translations (`x.en.md`): the first of them stands for the original.
  return [...entry.variants.values()][0] as Variant;
}

export interface DocsLibrary {
  /** The index, re-read first when the folder changed and the last check is older than recheckMs. */
  current(): Promise<DocsIndex>;
}

/**
 * Re-indexing is cheap and lazy: at most every `recheckMs` a request stats the folder's `.md`
 * files; only when their fingerprint changed are the files read and the index rebuilt.
 * Concurrent requests share one check; a failing re-read keeps serving the previous index.
 */
export function createDocsLibrary(options: { dir: string; recheckMs: number; log: FastifyBaseLogger; now?: () => number }): DocsLibrary {
  const { dir, recheckMs, log } = options;
  const now = options.now ?? Date.now;
  let index: DocsIndex = { documents: new Map() };
  let fingerprint: string | undefined;
  let checkedAt = 0;
  let pending: Promise<DocsIndex> | undefined;

  const refresh = async (): Promise<DocsIndex> => {
    try {
      const files = await scanFolder(dir);
      const next = fingerprintOf(files);
      if (next !== fingerprint) {
        index = await buildIndex(dir, files ?? [], log);
        if (files === null) log.warn({ dir }, 'docs portal: the docs folder does not exist; no documents');
        else log.info({ dir, documents: index.documents.size }, 'docs portal: indexed');
        fingerprint = next;
      }
    } catch (error) {
      log.error({ err: error, dir }, 'docs portal: cannot read the docs folder; serving the previous index');
    }
    checkedAt = now();
    return index;
  };

  return {
    current() {
      if (fingerprint !== undefined && now() - checkedAt < recheckMs) return Promise.resolve(index);
      pending ??= refresh().finally(() => {
        pending = undefined;
      });
      return pending;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Routes

const localeQuery = z.union([z.string(), z.array(z.string())]).optional();
/** Only the locale selectors; anything else is refused (DOCS_INVALID_QUERY). */
const querySchema = z.strictObject({ lang: localeQuery, locale: localeQuery });
const paramsSchema = z.strictObject({ id: z.string().regex(DOC_ID) });
const QUERY_KEYS = new Set(Object.keys(querySchema.shape));

/** Schema failures answered with the portal's own localized codes instead of VALIDATION_FAILED. */
function checkInput(request: FastifyRequest): void {
  const failure = request.validationError;
  if (!failure) return;
  const { locale } = request.gateway;
  if (failure.validationContext === 'params') throw gatewayError('DOCS_INVALID_ID', 400, locale);
  const unknown = Object.keys((request.query ?? {}) as object).filter((key) => !QUERY_KEYS.has(key));
  throw gatewayError('DOCS_INVALID_QUERY', 400, locale, { name: unknown.join(', ') || 'lang' });
}

function localesOf(entry: DocEntry): Locale[] {
  return [...entry.variants.keys()].sort();
}

/** The caller's locale when that version exists, else the authoritative one. */
function pick(entry: DocEntry, requested: Locale): Variant {
  return entry.variants.get(requested) ?? authoritativeOf(entry);
}

function varyByLocale(reply: FastifyReply): void {
  void reply.header('vary', 'Accept-Language, Cookie');
}

export interface DocsPortalOptions {
  /** Absolute path of the docs folder (GATEWAY_DOCS_DIR). */
  dir: string;
  /** GATEWAY_DOCS_RECHECK_MS: how long an index is trusted before the folder is looked at again. */
  recheckMs: number;
  now?: () => number;
}

/** The plugin `buildApp({ docsPortal })` registers behind the permission table. */
export function createDocsPortal(options: DocsPortalOptions): FastifyPluginAsync {
  return async (app) => {
    const library = createDocsLibrary({ ...options, log: app.log });
    await library.current();

    app.get(DOCS_PREFIX, { schema: { querystring: querySchema }, attachValidation: true }, async (request, reply) => {
      checkInput(request);
      const requested = request.gateway.locale;
      const { documents } = await library.current();
      varyByLocale(reply);
      return {
        documents: [...documents.values()].map((entry) => {
          const shown = pick(entry, requested);
          return {
            id: entry.id,
            title: shown.title,
            path: (entry.original ?? authoritativeOf(entry)).path,
            locale: shown.locale,
            locales: localesOf(entry),
            authoritativeLocale: authoritativeOf(entry).locale,
            metadata: shown.metadata,
            missingMetadata: shown.missingMetadata,
            complete: shown.missingMetadata.length === 0,
          };
        }),
        readOnly: true,
        notice: docsNotice('READ_ONLY', requested),
      };
    });

    app.get(`${DOCS_PREFIX}/:id`, { schema: { params: paramsSchema, querystring: querySchema }, attachValidation: true }, async (request, reply) => {
      checkInput(request);
      const requested = request.gateway.locale;
      const { id } = request.params as z.output<typeof paramsSchema>;
      const entry = (await library.current()).documents.get(id);
      if (!entry) throw gatewayError('DOCS_NOT_FOUND', 404, requested, { id });
      const shown = pick(entry, requested);
      const authoritative = authoritativeOf(entry);
      const georgianExists = entry.variants.has('ka');
      const notice =
        shown.locale !== 'ka' && georgianExists
          ? docsNotice('GEORGIAN_PREVAILS', requested, { language: shown.locale })
          : shown.locale !== requested
            ? docsNotice('TRANSLATION_MISSING', requested, { requested, language: shown.locale })
            : null;
      varyByLocale(reply);
      void reply.header('content-language', shown.locale);
      return {
        id: entry.id,
        title: shown.title,
        path: shown.path,
        locale: shown.locale,
        requestedLocale: requested,
        availableLocales: localesOf(entry),
        authoritativeLocale: authoritative.locale,
        authoritative: shown.locale === authoritative.locale,
        notice,
        metadata: shown.metadata,
        missingMetadata: shown.missingMetadata,
        complete: shown.missingMetadata.length === 0,
        readOnly: true,
        content: shown.content,
      };
    });
  };
}
