// `npm run bench:relay`: a benchmark (not a test) of kes-outbox-relay against local Postgres
// and Kafka. See docs/benchmarks.md for what each figure means.
//
//   1. set-up     database kvary_bench (dropped and re-created, migrated), topic kes.bench.<ts>
//   2. history    --history rows already dispatched, then VACUUM ANALYZE
//   3. drain      --events pending rows, start the relay (dist/main.js, plain node), time it
//   4. raw        the same messages straight to Kafka with kafkajs (same producer settings)
//   5. offered    --rate events/s for --duration s of real transactional writes, latency in SQL
//   6. stop       SIGTERM, time to exit, exit code
//   +  phases     (relay stopped) the relay's own claim/prepare/send/mark functions in-process,
//                 timed per phase (--phase-events, 0 to skip); --cpu-prof profiles the relay
//   7. report     human table, then ONE final JSON line on stdout
//
// Progress goes to stderr; stdout carries the table and the JSON line (only the JSON line
// with --json-only). A bad flag prints one line naming it and exits 2.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Partitioners, type Admin, type Message } from 'kafkajs';
import pg from 'pg';
import { writeOutboxEvent } from '@kvary/outbox/writer';
import { createKafka, ensureTopics, parseBrokers } from '@kvary/platform/kafka';
import { createLogger } from '@kvary/platform/logging';
import { runMigrations } from '@kvary/platform/migrations';
import { createPool, withDatabase, withTransaction, type Pool } from '@kvary/platform/postgres';
import * as relayConfigModule from '../../services/kes-outbox-relay/src/config.js';
import { cloudEventHeaders, Publisher } from '../../services/kes-outbox-relay/src/publisher.js';
import { claimBatch, markDispatched, readStats, type ClaimedRow } from '../../services/kes-outbox-relay/src/store.js';
import { migrationSets } from '../migration-sets.js';
import { formatSummary, summariseProfile, type ProfileSummary } from './cpuprofile-summary.js';
import {
  aggregateId,
  BENCH_AGGREGATE_TYPE,
  BENCH_EVENT_TYPE,
  BENCH_SOURCE,
  CpuTracker,
  FlagError,
  findLocalKafka,
  jsHeaders,
  jsPayload,
  parseArgs,
  parsePrometheus,
  percentile,
  procStatusKb,
  round,
  sleep,
  SQL_HEADERS,
  SQL_PAYLOAD,
  sqlAggregate,
  USAGE,
  type BenchOptions,
  type CpuUsage,
  type CpuWindow,
} from './lib.js';

// ---------------------------------------------------------------------------------------------
// Flags and constants

let opts: BenchOptions;
try {
  const parsed = parseArgs(process.argv.slice(2));
  if (parsed === 'help') {
    console.log(USAGE);
    process.exit(0);
  }
  opts = parsed;
} catch (error) {
  if (error instanceof FlagError) {
    console.error(`relay-bench: ${error.message}`);
    process.exit(2);
  }
  throw error;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RELAY_PROJECT = 'services/kes-outbox-relay';
const RELAY_MAIN = path.join(ROOT, RELAY_PROJECT, 'dist/main.js');
const BENCH_DB = 'kvary_bench';
const TABLE = 'kes_outbox_events';
const LANES = Array.from({ length: 64 }, (_, i) => i);
const baseUrl = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/kvary';
const adminUrl = withDatabase(baseUrl, 'postgres');
const benchUrl = withDatabase(baseUrl, BENCH_DB);
const brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
const relayDefaults = relayConfigModule.parseRelayConfig({});
/** The relay's Postgres session options (e.g. `-c jit=off`) when its config exports them. */
const relaySessionOptions = String((relayConfigModule as Record<string, unknown>).RELAY_SESSION_OPTIONS ?? '');
/** `-c name=value` pairs of relaySessionOptions, to mirror them in the EXPLAIN session. */
const relaySessionSettings = [...relaySessionOptions.matchAll(/-c\s*([\w.]+)=(\S+)/g)].map((m) => [m[1] ?? '', m[2] ?? ''] as const);
const batchSize = opts.batchSize ?? relayDefaults.KES_RELAY_BATCH_SIZE;
const maxRequestBytes = relayDefaults.KES_RELAY_MAX_REQUEST_BYTES;
const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
const outDir = path.join(ROOT, '.local/bench', `relay-${stamp}`);
const cores = os.cpus().length;
const benchStart = performance.now();

function say(message: string): void {
  if (opts.jsonOnly) return;
  const t = ((performance.now() - benchStart) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${t}s] ${message}\n`);
}

const fmt = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined || Number.isNaN(n) ? 'n/a' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

// Set in main(): CPU per process group, sampled from /proc every 500 ms.
let tracker: CpuTracker;
/** Quiet-gate results: how long each timed phase waited for other sessions to calm down. */
const quietGates: Record<string, { waited_s: number; foreign_cores: number }> = {};
const QUIET_CORES = 0.15;
const QUIET_MAX_WAIT_MS = 60000;

/** Waits (bounded) until other sessions on the machine leave it alone, then records it. */
async function quietGate(phase: string): Promise<void> {
  const r = await tracker.waitQuiet(QUIET_CORES, QUIET_MAX_WAIT_MS);
  quietGates[phase] = r;
  if (r.waited_s > 1.5 || r.foreign_cores >= QUIET_CORES) {
    say(`  ${phase}: waited ${r.waited_s} s for other sessions; foreign load now ${r.foreign_cores} cores`);
  }
}

/** Warning text when other sessions took a noticeable share of the machine in a window. */
function contamination(cpu: CpuUsage): string {
  const cores = cpu.foreign_s / Math.max(0.001, cpu.wall_s);
  return cores >= 0.1 ? ` [foreign load ${round(cores, 2)} cores]` : '';
}

// ---------------------------------------------------------------------------------------------
// Resources to release whatever happens

const cleanup = {
  relay: undefined as ChildProcess | undefined,
  kafkaAdmin: undefined as Admin | undefined,
  topic: undefined as string | undefined,
  topicDeleted: false,
  closers: [] as (() => Promise<unknown>)[],
};

async function releaseAll(): Promise<void> {
  const relay = cleanup.relay;
  if (relay && relay.exitCode === null && relay.signalCode === null) {
    relay.kill('SIGTERM');
    const done = new Promise((resolve) => relay.once('exit', resolve));
    if (!(await Promise.race([done.then(() => true), sleep(15000).then(() => false)]))) relay.kill('SIGKILL');
  }
  if (cleanup.kafkaAdmin && cleanup.topic && !cleanup.topicDeleted) {
    try {
      await Promise.race([cleanup.kafkaAdmin.deleteTopics({ topics: [cleanup.topic], timeout: 10000 }), sleep(15000)]);
      cleanup.topicDeleted = true;
    } catch (error) {
      process.stderr.write(`relay-bench: could not delete topic ${cleanup.topic}: ${(error as Error).message}\n`);
    }
  }
  for (const close of cleanup.closers.reverse()) await close().catch(() => undefined);
  cleanup.closers = [];
  await cleanup.kafkaAdmin?.disconnect().catch(() => undefined);
  cleanup.kafkaAdmin = undefined;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`relay-bench: ${signal}, cleaning up\n`);
    void releaseAll().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// SQL helpers

async function one<T extends Record<string, unknown>>(db: pg.Client, text: string, values: unknown[] = []): Promise<T> {
  const res = await db.query(text, values);
  return (res.rows[0] ?? {}) as T;
}

interface CapturedSql {
  text: string;
  values: unknown[];
}

/** The exact SQL and parameters a store.ts function sends, captured with a fake pool. */
async function captureSql(call: (pool: Pool) => Promise<unknown>): Promise<CapturedSql> {
  let captured: CapturedSql = { text: '', values: [] };
  const fake = {
    query: async (config: { text: string; values?: unknown[] }) => {
      captured = { text: config.text, values: config.values ?? [] };
      return { rows: [], rowCount: 0 };
    },
  };
  await call(fake as unknown as Pool);
  return captured;
}

const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** A parameter as an untyped SQL literal (EXECUTE coerces it to the prepared parameter type). */
function sqlLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof Date) return quote(value.toISOString());
  if (Array.isArray(value)) {
    const items = value.map((v) => (typeof v === 'number' || /^-?\d+$/.test(String(v)) ? String(v) : `"${String(v).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`));
    return quote(`{${items.join(',')}}`);
  }
  if (typeof value === 'object') return quote(JSON.stringify(value));
  return quote(String(value));
}

interface Explained {
  ms: number | null;
  /** Time spent compiling the plan with JIT (part of ms), null when JIT did not run. */
  jit_ms: number | null;
  plan: string;
}

/**
 * EXPLAIN (ANALYZE, BUFFERS) of a server-side prepared statement, like the relay's named
 * statements: forced generic or forced custom plan (the relay may use either after 5 runs).
 */
async function explainPrepared(
  db: pg.Client,
  sql: CapturedSql,
  mode: 'generic' | 'custom',
  opts2: { rollback?: boolean } = {},
): Promise<Explained> {
  const { text } = sql;
  const args = sql.values.map(sqlLiteral);
  await db.query('DEALLOCATE ALL');
  await db.query(`SET plan_cache_mode = force_${mode}_plan`);
  if (opts2.rollback) await db.query('BEGIN');
  try {
    await db.query(`PREPARE bench_stmt AS ${text}`);
    const res = await db.query(`EXPLAIN (ANALYZE, BUFFERS, SETTINGS) EXECUTE bench_stmt${args.length ? `(${args.join(', ')})` : ''}`);
    const plan = res.rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
    const m = /Execution Time: ([\d.]+) ms/.exec(plan);
    const jit = /JIT:[\s\S]*?Total ([\d.]+) ms/.exec(plan);
    return { ms: m ? Number(m[1]) : null, jit_ms: jit ? Number(jit[1]) : null, plan };
  } finally {
    if (opts2.rollback) await db.query('ROLLBACK');
    await db.query('DEALLOCATE ALL');
    await db.query('RESET plan_cache_mode');
  }
}

/** Inserts rows g in [from, to] with the synthetic generator (chunked, each chunk committed). */
async function insertRows(
  db: pg.Client,
  kind: 'history' | 'pending',
  from: number,
  to: number,
  topic: string,
  aggregates: number,
): Promise<void> {
  const chunk = kind === 'history' ? 200_000 : 50_000;
  const total = to - from + 1;
  // History: spread over the last 6 days (inside the relay's 7-day retention, so retention
  // finds nothing to delete and stays out of the measurement).
  const spanMs = (6 * 24 * 3600 * 1000 - 3600 * 1000) / Math.max(1, total);
  for (let lo = from; lo <= to; lo += chunk) {
    const hi = Math.min(to, lo + chunk - 1);
    const select = `SELECT g, ${sqlAggregate(aggregates)} AS a FROM generate_series($2::bigint, $3::bigint) g`;
    if (kind === 'history') {
      await db.query(
        `INSERT INTO ${TABLE} (event_id, aggregate_type, aggregate_id, event_type, event_version, topic, source, payload, headers,
                               status, attempts, next_attempt_at, created_at, dispatched_at, kafka_partition, kafka_offset)
         SELECT gen_random_uuid(), '${BENCH_AGGREGATE_TYPE}', a, '${BENCH_EVENT_TYPE}', 1, $1, '${BENCH_SOURCE}', ${SQL_PAYLOAD}, ${SQL_HEADERS},
                'dispatched', 1, ts, ts, ts + interval '4 ms', (g % 3)::int, g / 3
           FROM (SELECT s.*, now() - interval '6 days' + (g - $2::bigint) * ($4::double precision * interval '1 ms') AS ts
                   FROM (${select}) s) s2
          ORDER BY g`,
        [topic, lo, hi, spanMs],
      );
    } else {
      // Exactly the columns writeOutboxEvent fills; the rest are the table's defaults.
      await db.query(
        `INSERT INTO ${TABLE} (event_id, aggregate_type, aggregate_id, event_type, event_version, topic, source, payload, headers)
         SELECT gen_random_uuid(), '${BENCH_AGGREGATE_TYPE}', a, '${BENCH_EVENT_TYPE}', 1, $1, '${BENCH_SOURCE}', ${SQL_PAYLOAD}, ${SQL_HEADERS}
           FROM (${select}) s
          ORDER BY g`,
        [topic, lo, hi],
      );
    }
    say(`  ${kind}: ${fmt(hi - from + 1)} / ${fmt(total)} rows`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The relay child process: RSS sampling, metrics scraping, exit tracking

class RelayProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly spawnedAt = performance.now();
  readonly spawnedAtEpochMs = Date.now();
  peakRssKb = 0;
  windowPeakRssKb = 0;
  rssSamples = 0;
  exit: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
  readonly exited: Promise<void>;
  private readonly sampler: NodeJS.Timeout;

  constructor(
    readonly port: number,
    env: NodeJS.ProcessEnv,
    nodeArgs: string[],
    logFile: string,
  ) {
    const fd = openSync(logFile, 'a');
    this.child = spawn(process.execPath, [...nodeArgs, RELAY_MAIN], { cwd: outDir, env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    if (this.child.pid === undefined) throw new Error('could not start the relay');
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal, at: performance.now() };
        clearInterval(this.sampler);
        resolve();
      });
    });
    this.sampler = setInterval(() => this.sample(), 200);
    this.sampler.unref();
  }

  sample(): void {
    const kb = procStatusKb(this.pid, 'VmRSS');
    if (kb === undefined) return;
    this.rssSamples++;
    this.peakRssKb = Math.max(this.peakRssKb, kb);
    this.windowPeakRssKb = Math.max(this.windowPeakRssKb, kb);
  }

  /** Peak RSS since the previous call (MiB), then starts a new window. */
  takeWindowPeakMb(): number {
    this.sample();
    const peak = this.windowPeakRssKb;
    this.windowPeakRssKb = 0;
    return round(peak / 1024, 1);
  }

  alive(): boolean {
    return this.exit === undefined;
  }

  async metrics(): Promise<Map<string, number>> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}/metrics`, { signal: AbortSignal.timeout(5000) });
      return parsePrometheus(await res.text());
    } catch {
      return new Map();
    }
  }
}

/** Relay-side figures between two /metrics scrapes. */
function relayWindow(a: Map<string, number>, b: Map<string, number>) {
  const d = (name: string) => (b.get(name) ?? 0) - (a.get(name) ?? 0);
  const batches = d('kes_outbox_batch_size_count');
  const polls = d('kes_outbox_poll_duration_seconds_count');
  return {
    batches,
    avg_batch_rows: batches ? round(d('kes_outbox_batch_size_sum') / batches, 1) : 0,
    claims: polls,
    claim_total_s: round(d('kes_outbox_poll_duration_seconds_sum'), 3),
    claim_avg_ms: polls ? round((1000 * d('kes_outbox_poll_duration_seconds_sum')) / polls, 2) : 0,
    relay_cpu_s: round(d('process_cpu_user_seconds_total') + d('process_cpu_system_seconds_total'), 2),
    relay_gc_s: round(d('nodejs_gc_duration_seconds_sum'), 3),
    dispatched: d('kes_outbox_dispatched_total'),
  };
}

/** The relay's memory as prom-client's default metrics report it (MiB). */
function relayMemory(m: Map<string, number>) {
  const mb = (name: string) => round((m.get(name) ?? NaN) / 1048576, 1);
  return {
    rss_mb: mb('process_resident_memory_bytes'),
    heap_total_mb: mb('nodejs_heap_size_total_bytes'),
    heap_used_mb: mb('nodejs_heap_size_used_bytes'),
    external_mb: mb('nodejs_external_memory_bytes'),
  };
}

// ---------------------------------------------------------------------------------------------
// Phases

interface OfferedResult {
  notify: 'on' | 'off';
  scheduled: number;
  committed: number;
  failed: number;
  achieved_rate: number;
  late_writes: number;
  start_lag_p99_ms: number;
  start_lag_max_ms: number;
  write_tx_p50_ms: number;
  write_tx_p99_ms: number;
  write_tx_max_ms: number;
  latency_p50_ms: number;
  latency_p95_ms: number;
  latency_p99_ms: number;
  latency_max_ms: number;
  latency_rows: number;
  settle_s: number;
  relay: ReturnType<typeof relayWindow>;
  cpu: CpuUsage;
  peak_rss_mb: number;
}

/** Fell behind schedule: the transaction started more than this after its scheduled time. */
const LATE_MS = 10;

async function offeredLoad(db: pg.Client, relay: RelayProcess, writers: Pool, topic: string, notify: 'on' | 'off'): Promise<OfferedResult> {
  const aggregates = Array.from({ length: opts.aggregates }, (_, k) => aggregateId(k));
  let seq = 1_000_000_000 + (notify === 'on' ? 0 : 100_000_000);
  const write = (onStart?: () => void) => {
    const s = seq++;
    const agg = aggregates[Math.floor(Math.random() * aggregates.length)] ?? aggregateId(0);
    return withTransaction(writers, async (client) => {
      onStart?.();
      await client.query({
        name: 'bench_domain_insert',
        text: 'INSERT INTO bench_domain (aggregate_id, amount, note) VALUES ($1, $2, $3)',
        values: [agg, (Math.random() * 100000).toFixed(2), `bid ${s}`],
      });
      await writeOutboxEvent(
        client,
        {
          aggregateType: BENCH_AGGREGATE_TYPE,
          aggregateId: agg,
          eventType: BENCH_EVENT_TYPE,
          eventVersion: 1,
          topic,
          source: BENCH_SOURCE,
          payload: jsPayload(s, agg),
          headers: jsHeaders(s),
        },
        { notify: notify === 'on' },
      );
    });
  };

  // Warm-up: every pool connection prepares its statements, then let the relay catch up.
  await Promise.all(Array.from({ length: 16 }, () => write()));
  await waitDispatched(db, 0, 30000);
  await quietGate(`offered_${notify}`);
  const before = Number((await one<{ max: string }>(db, `SELECT coalesce(max(id), 0) AS max FROM ${TABLE}`)).max);

  const total = Math.max(1, Math.round(opts.rate * opts.duration));
  const interval = 1000 / opts.rate;
  const startLag = new Array<number>(total).fill(NaN);
  const txMs: number[] = [];
  let failed = 0;
  let lastCommit = 0;
  const metricsBefore = await relay.metrics();
  relay.takeWindowPeakMb();
  const cpuWindow = tracker.window();
  say(`offered load (notify ${notify}): ${fmt(opts.rate)} events/s for ${opts.duration} s = ${fmt(total)} transactions`);

  const inflight = new Set<Promise<void>>();
  const t0 = performance.now() + 20;
  let next = 0;
  let lastReport = t0;
  while (next < total) {
    const now = performance.now();
    while (next < total && t0 + next * interval <= now) {
      const i = next++;
      const due = t0 + i * interval;
      const launched = performance.now();
      const p = write(() => {
        startLag[i] = performance.now() - due;
      }).then(
        () => {
          lastCommit = performance.now();
          txMs.push(lastCommit - launched);
        },
        (error: unknown) => {
          failed++;
          if (failed <= 3) say(`  write failed: ${(error as Error).message}`);
        },
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    if (now - lastReport >= 5000) {
      lastReport = now;
      say(`  ${fmt(next)} / ${fmt(total)} scheduled, ${inflight.size} in flight`);
    }
    if (next < total) await sleep(Math.max(0, t0 + next * interval - performance.now()));
  }
  await Promise.all(inflight);
  const windowS = (lastCommit - t0) / 1000;
  const after = Number((await one<{ max: string }>(db, `SELECT coalesce(max(id), 0) AS max FROM ${TABLE}`)).max);
  const settleStart = performance.now();
  await waitDispatched(db, before, 120000);
  const settle = (performance.now() - settleStart) / 1000;
  const cpu = cpuWindow.end();
  const metricsAfter = await relay.metrics();

  const lat = await one<Record<string, number | string>>(
    db,
    `SELECT count(*)::int AS n, count(*) FILTER (WHERE status = 'dispatched')::int AS dispatched,
            percentile_cont(0.50) WITHIN GROUP (ORDER BY lat) AS p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY lat) AS p95,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY lat) AS p99,
            max(lat) AS max
       FROM (SELECT status, extract(epoch FROM dispatched_at - created_at) * 1000 AS lat
               FROM ${TABLE} WHERE id > $1 AND id <= $2) s`,
    [before, after],
  );
  const sortedTx = txMs.sort((a, b) => a - b);
  const lags = startLag.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  return {
    notify,
    scheduled: total,
    committed: txMs.length,
    failed,
    achieved_rate: round(txMs.length / windowS, 1),
    late_writes: lags.filter((v) => v > LATE_MS).length,
    start_lag_p99_ms: round(percentile(lags, 0.99), 2),
    start_lag_max_ms: round(lags[lags.length - 1] ?? NaN, 2),
    write_tx_p50_ms: round(percentile(sortedTx, 0.5), 2),
    write_tx_p99_ms: round(percentile(sortedTx, 0.99), 2),
    write_tx_max_ms: round(sortedTx[sortedTx.length - 1] ?? NaN, 2),
    latency_p50_ms: round(Number(lat.p50), 2),
    latency_p95_ms: round(Number(lat.p95), 2),
    latency_p99_ms: round(Number(lat.p99), 2),
    latency_max_ms: round(Number(lat.max), 2),
    latency_rows: Number(lat.dispatched),
    settle_s: round(settle, 2),
    relay: relayWindow(metricsBefore, metricsAfter),
    cpu,
    peak_rss_mb: relay.takeWindowPeakMb(),
  };
}

/** Waits until no row above minId is pending (fails after timeoutMs). */
async function waitDispatched(db: pg.Client, minId: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const r = await one<{ id?: string }>(db, `SELECT id FROM ${TABLE} WHERE status = 'pending' AND id > $1 ORDER BY id LIMIT 1`, [minId]);
    if (r.id === undefined) return;
    if (performance.now() > deadline) throw new Error(`rows above id ${minId} still pending after ${timeoutMs} ms (first: ${r.id})`);
    await sleep(100);
  }
}

/** The raw ceiling: the drained rows as the relay would send them, straight to Kafka. */
async function rawCeiling(db: pg.Client, topic: string, firstId: number, lastId: number) {
  say('raw ceiling: loading the drained rows into memory');
  const rows: ClaimedRow[] = [];
  for (let lo = firstId; lo <= lastId; lo += 25000) {
    const res = await db.query(
      `SELECT id, event_id, aggregate_type, aggregate_id, event_type, event_version, topic, source,
              payload::text AS payload, headers, attempts, created_at
         FROM ${TABLE} WHERE id BETWEEN $1 AND $2 ORDER BY id`,
      [lo, Math.min(lastId, lo + 24999)],
    );
    for (const r of res.rows) {
      rows.push({
        id: String(r.id),
        eventId: r.event_id,
        aggregateType: r.aggregate_type,
        aggregateId: r.aggregate_id,
        eventType: r.event_type,
        eventVersion: r.event_version,
        topic,
        source: r.source,
        payload: r.payload,
        headers: r.headers ?? {},
        attempts: r.attempts,
        createdAt: r.created_at,
      });
    }
  }
  const kafka = createKafka({ brokers: parseBrokers(brokers), clientId: 'kes-relay-bench-raw' });
  // The relay's producer settings (publisher.ts).
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2000 },
  });
  const admin = kafka.admin();
  await Promise.all([producer.connect(), admin.connect()]);
  try {
    const partitions = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions ?? [];
    const partitioner = Partitioners.DefaultPartitioner();
    const send = (messages: Message[]) => producer.sendBatch({ acks: -1, timeout: 30000, topicMessages: [{ topic, messages }] });
    await send([{ key: 'bench-warm-up', value: '{}' }]);
    await quietGate('raw');
    say(`raw ceiling: ${fmt(rows.length)} messages, sendBatch per ${fmt(batchSize)} (split at ${fmt(maxRequestBytes)} bytes like the relay)`);
    const cpuWindow = tracker.window();
    const t0 = performance.now();
    let requests = 0;
    for (let i = 0; i < rows.length; i += batchSize) {
      let chunk: Message[] = [];
      let chunkBytes = 0;
      for (const row of rows.slice(i, i + batchSize)) {
        const headers = cloudEventHeaders(row);
        // The relay's size estimate (publisher.ts prepare) and request split (send).
        let bytes = Buffer.byteLength(row.aggregateId) + Buffer.byteLength(row.payload) + 70;
        for (const [k, v] of Object.entries(headers)) bytes += Buffer.byteLength(k) + Buffer.byteLength(v) + 4;
        const message: Message = { key: row.aggregateId, value: row.payload, headers };
        const partition = partitioner({ topic, partitionMetadata: partitions, message });
        if (chunk.length > 0 && chunkBytes + bytes > maxRequestBytes) {
          await send(chunk);
          requests++;
          chunk = [];
          chunkBytes = 0;
        }
        chunk.push({ ...message, partition });
        chunkBytes += bytes;
      }
      if (chunk.length) {
        await send(chunk);
        requests++;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuWindow.end();
    return { seconds: round(seconds, 3), events_per_s: round(rows.length / seconds, 0), requests, cpu, messages: rows.length };
  } finally {
    await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
  }
}

/** The relay's own functions run in-process, each phase timed (relay stopped meanwhile). */
async function phaseBreakdown(db: pg.Client, topic: string, from: number, count: number) {
  say(`phase breakdown: inserting ${fmt(count)} pending rows`);
  await insertRows(db, 'pending', from, from + count - 1, topic, opts.aggregates);
  await db.query(`ANALYZE ${TABLE}`);
  const pool = createPool({
    connectionString: benchUrl,
    max: 4,
    applicationName: 'kes-relay-bench-phases',
    ...(relaySessionOptions ? { options: relaySessionOptions } : {}),
  });
  const logger = createLogger({ name: 'relay-bench', level: 'silent', pretty: false });
  const publisher = new Publisher(createKafka({ brokers: parseBrokers(brokers), clientId: 'kes-relay-bench-phases' }), logger, {
    sendTimeoutMs: relayDefaults.KES_RELAY_SEND_TIMEOUT_MS,
    maxRequestBytes,
    maxMessageBytes: relayDefaults.KES_RELAY_MAX_MESSAGE_BYTES,
  });
  await publisher.connect();
  const phases = ['claim', 'prepare', 'send', 'mark'] as const;
  const wall: Record<string, number> = { claim: 0, prepare: 0, send: 0, mark: 0 };
  const cpu: Record<string, number> = { claim: 0, prepare: 0, send: 0, mark: 0 };
  const claimMs: number[] = [];
  let batches = 0;
  let rowsDone = 0;
  let requests = 0;
  try {
    await quietGate('phases');
    const cpuWindow = tracker.window();
    const t0 = performance.now();
    for (;;) {
      let t = performance.now();
      let c = process.cpuUsage();
      const tick = (phase: (typeof phases)[number]) => {
        const now = performance.now();
        const used = process.cpuUsage(c);
        wall[phase] = (wall[phase] ?? 0) + (now - t);
        cpu[phase] = (cpu[phase] ?? 0) + (used.user + used.system) / 1000;
        if (phase === 'claim') claimMs.push(now - t);
        t = now;
        c = process.cpuUsage();
      };
      const rows = await claimBatch(pool, LANES, batchSize);
      tick('claim');
      if (rows.length === 0) break;
      const prepared = await publisher.prepare(rows);
      tick('prepare');
      if (prepared.failed.length) throw new Error(`phase breakdown: ${prepared.failed.length} rows failed to prepare`);
      const acked = await publisher.send(prepared.ready);
      tick('send');
      await markDispatched(pool, acked);
      tick('mark');
      let chunkBytes = 0;
      requests++;
      for (const item of prepared.ready) {
        if (chunkBytes > 0 && chunkBytes + item.bytes > maxRequestBytes) {
          requests++;
          chunkBytes = 0;
        }
        chunkBytes += item.bytes;
      }
      batches++;
      rowsDone += rows.length;
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpuUse = cpuWindow.end();
    const totalWall = phases.reduce((s, p) => s + (wall[p] ?? 0), 0);
    const sortedClaims = claimMs.sort((a, b) => a - b);
    return {
      rows: rowsDone,
      batches,
      requests,
      seconds: round(seconds, 3),
      events_per_s: round(rowsDone / seconds, 0),
      claim_p50_ms: round(percentile(sortedClaims, 0.5), 2),
      claim_max_ms: round(sortedClaims[sortedClaims.length - 1] ?? NaN, 2),
      per_batch_ms: Object.fromEntries(phases.map((p) => [p, round((wall[p] ?? 0) / Math.max(1, batches), 2)])),
      node_cpu_per_batch_ms: Object.fromEntries(phases.map((p) => [p, round((cpu[p] ?? 0) / Math.max(1, batches), 2)])),
      share_pct: Object.fromEntries(phases.map((p) => [p, round((100 * (wall[p] ?? 0)) / Math.max(1, totalWall), 1)])),
      cpu: cpuUse,
    };
  } finally {
    await publisher.close();
    await pool.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const profDir = path.join(outDir, 'cpuprof');
  say(`output directory ${path.relative(ROOT, outDir)}`);

  // 1. Set-up ---------------------------------------------------------------------------------
  // The code under test, stamped before the build (others may commit while this runs).
  const git = (args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const relayPaths = ['services/kes-outbox-relay', 'packages/outbox', 'packages/platform', 'services/svc-tenders/migrations', 'migrations'];
  const relayGit = { commit: git(['rev-parse', '--short', 'HEAD']), dirty: git(['status', '--porcelain', '--', ...relayPaths]).length > 0 };
  say(`building the relay: npx tsc -b ${RELAY_PROJECT}`);
  const build = spawnSync('npx', ['tsc', '-b', RELAY_PROJECT], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (build.status !== 0) throw new Error(`build failed (npx tsc -b ${RELAY_PROJECT}):\n${build.stdout}${build.stderr}`);

  say(`database ${BENCH_DB}: drop, create, migrate`);
  const admin = new pg.Client({ connectionString: adminUrl, application_name: 'kes-relay-bench' });
  await admin.connect();
  const pgVersion = String((await one<{ server_version: string }>(admin as pg.Client, 'SHOW server_version')).server_version);
  await admin.query(`DROP DATABASE IF EXISTS ${BENCH_DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${BENCH_DB}`);
  await admin.end();
  await runMigrations({ databaseUrl: benchUrl, sets: migrationSets });
  const db = new pg.Client({ connectionString: benchUrl, application_name: 'kes-relay-bench' });
  await db.connect();
  cleanup.closers.push(() => db.end());
  await db.query(`
    CREATE TABLE bench_domain (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      aggregate_id text NOT NULL,
      amount       numeric(14, 2) NOT NULL,
      note         text NOT NULL,
      created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE INDEX bench_domain_aggregate_idx ON bench_domain (aggregate_id);`);
  const pgSettings = Object.fromEntries(
    (
      await db.query(
        `SELECT name, current_setting(name) AS v FROM pg_settings
          WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_wal_size', 'autovacuum', 'work_mem', 'jit')`,
      )
    ).rows.map((r: { name: string; v: string }) => [r.name, r.v]),
  );

  const kafkaLocal = findLocalKafka();
  tracker = new CpuTracker(BENCH_DB, kafkaLocal.pid, cores);
  cleanup.closers.push(async () => tracker.stop());
  const kafka = createKafka({ brokers: parseBrokers(brokers), clientId: 'kes-relay-bench' });
  const kafkaAdmin = kafka.admin();
  await kafkaAdmin.connect();
  cleanup.kafkaAdmin = kafkaAdmin;
  const topic = `kes.bench.${Date.now()}`;
  cleanup.topic = topic;
  await ensureTopics(kafkaAdmin, [{ topic, numPartitions: 3 }]);
  say(`topic ${topic} (3 partitions); relay batch size ${batchSize}${opts.batchSize ? '' : ' (relay default)'}`);

  // 2. History --------------------------------------------------------------------------------
  const tHistory = performance.now();
  if (opts.history > 0) {
    say(`history: ${fmt(opts.history)} dispatched rows`);
    await insertRows(db, 'history', 1, opts.history, 'kes.tenders.v1', opts.aggregates);
  }
  say('VACUUM ANALYZE');
  await db.query(`VACUUM ANALYZE ${TABLE}`);
  const historySeconds = (performance.now() - tHistory) / 1000;

  // 3. Drain ----------------------------------------------------------------------------------
  say(`drain: inserting ${fmt(opts.events)} pending rows over ${fmt(opts.aggregates)} aggregates`);
  await insertRows(db, 'pending', opts.history + 1, opts.history + opts.events, topic, opts.aggregates);
  await db.query(`ANALYZE ${TABLE}`);
  const ids = await one<{ first: string; last: string; n: string }>(
    db,
    `SELECT min(id) AS first, max(id) AS last, count(*) AS n FROM ${TABLE} WHERE status = 'pending'`,
  );
  const firstId = Number(ids.first);
  const lastId = Number(ids.last);
  const sizes = await one<{ payload: number; headers: number; table_mb: number; rows: string }>(
    db,
    `SELECT (SELECT avg(octet_length(payload::text))::float FROM ${TABLE} WHERE id BETWEEN $1 AND $1 + 999) AS payload,
            (SELECT avg(octet_length(headers::text))::float FROM ${TABLE} WHERE id BETWEEN $1 AND $1 + 999) AS headers,
            pg_total_relation_size('${TABLE}') / 1048576.0 AS table_mb,
            (SELECT count(*) FROM ${TABLE}) AS rows`,
    [firstId],
  );

  // Evidence before the relay starts: the exact SQL of store.ts, EXPLAIN ANALYZE'd in a
  // session with the relay's own settings (RELAY_SESSION_OPTIONS, e.g. jit=off).
  for (const [name, value] of relaySessionSettings) await db.query(`SELECT set_config($1, $2, false)`, [name, value]);
  const claimSql = await captureSql((p) => claimBatch(p, LANES, batchSize));
  const markIds = Array.from({ length: Math.min(batchSize, opts.events) }, (_, i) => String(firstId + i));
  // The pipelined relay claims while the previous batch is still being marked: its ids are
  // excluded (4th argument when claimBatch takes it; ignored by older relays).
  const claimExcludingSql = await captureSql((p) => (claimBatch as (...a: unknown[]) => Promise<unknown>)(p, LANES, batchSize, markIds));
  const markSql = await captureSql((p) => markDispatched(p, markIds.map((id, i) => ({ id, partition: Number(id) % 3, offset: String(i) }))));
  const statsSql = await captureSql((p) => readStats(p));
  const explains: Record<string, Explained> = {};
  explains.claim_generic_cold = await explainPrepared(db, claimSql, 'generic');
  explains.claim_custom_cold = await explainPrepared(db, claimSql, 'custom');
  if (JSON.stringify(claimExcludingSql) !== JSON.stringify(claimSql)) {
    explains.claim_generic_excluding_prev_batch = await explainPrepared(db, claimExcludingSql, 'generic');
    explains.claim_custom_excluding_prev_batch = await explainPrepared(db, claimExcludingSql, 'custom');
  }
  explains.stats_backlog = await explainPrepared(db, statsSql, 'custom');
  explains.mark_batch = await explainPrepared(db, markSql, 'custom', { rollback: true });
  const tCount = performance.now();
  await db.query(`SELECT count(*) FROM ${TABLE} WHERE status = 'pending'`);
  const countPendingMs = performance.now() - tCount;
  say(
    `EXPLAIN ANALYZE: claim ${explains.claim_generic_cold.ms} ms (generic) / ${explains.claim_custom_cold.ms} ms (custom), ` +
      `mark ${explains.mark_batch.ms} ms, stats ${explains.stats_backlog.ms} ms; count(pending) ${countPendingMs.toFixed(1)} ms`,
  );

  const port = await freePort();
  const env: NodeJS.ProcessEnv = {};
  const relayVars = new Set(['DATABASE_URL', 'KAFKA_BROKERS', 'KAFKA_CLIENT_ID', 'RELAY_PORT', 'RELAY_HOST', 'LOG_LEVEL', 'NODE_OPTIONS', 'PGOPTIONS']);
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('KES_') && !relayVars.has(k)) env[k] = v;
  Object.assign(env, {
    DATABASE_URL: benchUrl,
    KAFKA_BROKERS: brokers,
    RELAY_HOST: '127.0.0.1',
    RELAY_PORT: String(port),
    LOG_LEVEL: 'warn',
    KES_RELAY_STATS_INTERVAL_MS: '1000',
  });
  if (opts.batchSize !== undefined) env.KES_RELAY_BATCH_SIZE = String(opts.batchSize);
  // What-if experiments without touching the relay: BENCH_RELAY_ENV='K=V;K=V' (e.g.
  // PGOPTIONS=-c jit=off) and BENCH_RELAY_NODE_OPTIONS='--max-semi-space-size=4'.
  const envOverrides: Record<string, string> = {};
  for (const pair of (process.env.BENCH_RELAY_ENV ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0) envOverrides[pair.slice(0, eq).trim()] = pair.slice(eq + 1);
  }
  Object.assign(env, envOverrides);
  const extraNodeArgs = (process.env.BENCH_RELAY_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  const nodeArgs = [...extraNodeArgs, ...(opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])];
  // A relay left running elsewhere (it retries its connection, so it survives DROP DATABASE)
  // would take lanes and publish part of the backlog: refuse to measure then.
  const strangers = await one<{ n: number; apps: string | null }>(
    db,
    `SELECT count(*)::int AS n, string_agg(DISTINCT application_name, ', ') AS apps
       FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'kes-outbox-relay%'`,
  );
  if (strangers.n > 0) throw new Error(`another relay is connected to ${BENCH_DB} (${strangers.apps}); stop it first`);
  await quietGate('drain');
  say(`drain: starting the relay: node ${nodeArgs.join(' ')} ${path.relative(ROOT, RELAY_MAIN)} (metrics on :${port})`);
  const cpuSpawn = tracker.window();
  const relay = new RelayProcess(port, env, nodeArgs, path.join(outDir, 'relay.log'));
  tracker.relayPid = relay.pid;
  cleanup.relay = relay.child;

  let firstProgressAt: number | undefined;
  let cpuFirst: CpuWindow | undefined;
  let rssFirstMb = NaN;
  let pendingZeroAt: number | undefined;
  let lastMin: number | undefined;
  let lastProgressAt = performance.now();
  let lastReport = performance.now();
  let midDrainDone = false;
  while (pendingZeroAt === undefined) {
    if (!relay.alive()) throw new Error(`the relay exited during the drain (code ${relay.exit?.code}); see ${outDir}/relay.log`);
    if (interrupted) return;
    const r = await one<{ id?: string }>(db, `SELECT id FROM ${TABLE} WHERE status = 'pending' ORDER BY id LIMIT 1`);
    const now = performance.now();
    const minPending = r.id === undefined ? undefined : Number(r.id);
    // One relay owns every lane and claims in id order: pending rows are [minPending, lastId].
    const pending = minPending === undefined ? 0 : lastId - minPending + 1;
    if (pending < opts.events && firstProgressAt === undefined) {
      firstProgressAt = now;
      cpuFirst = tracker.window();
      rssFirstMb = round((procStatusKb(relay.pid, 'VmRSS') ?? NaN) / 1024, 1);
    }
    if (minPending !== lastMin) {
      lastMin = minPending;
      lastProgressAt = now;
    } else if (now - lastProgressAt > 60000) {
      throw new Error(`no progress for 60 s with ${pending} rows pending; see ${outDir}/relay.log`);
    }
    if (pending === 0) {
      pendingZeroAt = now;
      break;
    }
    if (!midDrainDone && pending <= opts.events / 2) {
      midDrainDone = true;
      explains.claim_custom_mid_drain = await explainPrepared(db, claimSql, 'custom');
    }
    if (now - lastReport >= 2000) {
      lastReport = now;
      say(`  drain: ${fmt(pending)} pending, ${fmt(opts.events - pending)} dispatched after ${((now - relay.spawnedAt) / 1000).toFixed(1)} s`);
    }
    await sleep(Math.max(0, 100 - (performance.now() - now)));
  }
  const drainCpu = (cpuFirst ?? cpuSpawn).end();
  const drainCpuInclStartup = cpuSpawn.end();
  const drainRssMb = relay.takeWindowPeakMb();
  const drainMetrics = await relay.metrics();
  const relayDispatched = drainMetrics.get('kes_outbox_dispatched_total') ?? 0;
  if (drainMetrics.size > 0 && relayDispatched < opts.events) {
    say(`WARNING: the relay reports ${relayDispatched} of ${opts.events} rows dispatched: another relay took part; figures are invalid`);
  }
  const span = await one<{ first_ms: number; last_ms: number; n: string }>(
    db,
    `SELECT extract(epoch FROM min(dispatched_at)) * 1000 AS first_ms, extract(epoch FROM max(dispatched_at)) * 1000 AS last_ms,
            count(*) AS n
       FROM ${TABLE} WHERE id BETWEEN $1 AND $2 AND status = 'dispatched'`,
    [firstId, lastId],
  );
  // The first claimed batch is already done when the first row shows dispatched_at, so the
  // rate counts the rows dispatched after it over the time between first and last dispatch.
  const firstBatch = Math.min(batchSize, opts.events);
  const drainSeconds = (Number(span.last_ms) - Number(span.first_ms)) / 1000;
  const startupSeconds = (Number(span.first_ms) - relay.spawnedAtEpochMs) / 1000;
  const wallSeconds = (pendingZeroAt - relay.spawnedAt) / 1000;
  const drainRate = opts.events > firstBatch && drainSeconds > 0 ? (opts.events - firstBatch) / drainSeconds : opts.events / wallSeconds;
  const drain = {
    events: opts.events,
    dispatched: Number(span.n),
    relay_startup_s: round(startupSeconds, 3),
    drain_s: round(drainSeconds, 3),
    wall_s: round(wallSeconds, 3),
    events_per_s: round(drainRate, 0),
    wall_events_per_s: round(opts.events / wallSeconds, 0),
    relay: relayWindow(new Map(), drainMetrics),
    cpu: drainCpu,
    cpu_incl_startup: drainCpuInclStartup,
    peak_rss_mb: drainRssMb,
    rss_at_first_dispatch_mb: rssFirstMb,
    memory_at_end: relayMemory(drainMetrics),
  };
  say(
    `drain: ${fmt(drain.events_per_s)} events/s (${drain.drain_s} s after a ${drain.relay_startup_s} s start-up; ` +
      `${fmt(drain.wall_events_per_s)} events/s wall), relay RSS peak ${drainRssMb} MiB`,
  );

  // The state the offered load starts from: nothing pending, the drained rows dead in the
  // claim index (no VACUUM yet: autovacuum would wait for 20% of the table to be dead).
  explains.claim_custom_after_drain = await explainPrepared(db, claimSql, 'custom');
  explains.claim_generic_after_drain = await explainPrepared(db, claimSql, 'generic');
  explains.stats_after_drain = await explainPrepared(db, statsSql, 'custom');
  // What-if (BENCH_VACUUM_AFTER_DRAIN=1): the state after a VACUUM, as an aggressive per-table
  // autovacuum would leave it (off by default: measure what the relay meets in practice).
  const vacuumAfterDrain = process.env.BENCH_VACUUM_AFTER_DRAIN === '1';
  if (vacuumAfterDrain) {
    say('VACUUM after the drain (BENCH_VACUUM_AFTER_DRAIN=1)');
    await db.query(`VACUUM ${TABLE}`);
    explains.claim_custom_after_vacuum = await explainPrepared(db, claimSql, 'custom');
  }

  // 4. Raw ceiling ----------------------------------------------------------------------------
  // The idle relay is paused meanwhile (SIGSTOP/SIGCONT): its stats query and polling would
  // otherwise take CPU from the producer on a small machine.
  relay.child.kill('SIGSTOP');
  let raw: Awaited<ReturnType<typeof rawCeiling>>;
  try {
    raw = await rawCeiling(db, topic, firstId, lastId);
  } finally {
    relay.child.kill('SIGCONT');
  }
  const ratio = round(drain.events_per_s / raw.events_per_s, 3);
  say(`raw ceiling: ${fmt(raw.events_per_s)} events/s (${raw.requests} requests); drain/raw = ${ratio}`);
  relay.takeWindowPeakMb();

  // 5. Offered load ---------------------------------------------------------------------------
  const writers = createPool({ connectionString: benchUrl, max: 8, applicationName: 'kes-relay-bench-writer' });
  cleanup.closers.push(() => writers.end());
  const modes: ('on' | 'off')[] = opts.notify === 'both' ? ['on', 'off'] : [opts.notify];
  const offered: OfferedResult[] = [];
  for (const mode of modes) {
    if (!relay.alive()) throw new Error(`the relay exited (code ${relay.exit?.code}); see ${outDir}/relay.log`);
    const result = await offeredLoad(db, relay, writers, topic, mode);
    offered.push(result);
    say(
      `  notify ${mode}: ${fmt(result.committed)} committed at ${fmt(result.achieved_rate, 1)}/s, ${result.late_writes} late; ` +
        `commit-to-ack p50 ${result.latency_p50_ms} / p95 ${result.latency_p95_ms} / p99 ${result.latency_p99_ms} / max ${result.latency_max_ms} ms`,
    );
    await sleep(1000);
  }

  // 6. Stop -----------------------------------------------------------------------------------
  relay.sample();
  const hwmKb = procStatusKb(relay.pid, 'VmHWM') ?? 0;
  const rssBeforeStopMb = round((procStatusKb(relay.pid, 'VmRSS') ?? 0) / 1024, 1);
  const finalMetrics = await relay.metrics();
  say('stopping the relay (SIGTERM)');
  const termAt = performance.now();
  relay.child.kill('SIGTERM');
  let killed = false;
  if (!(await Promise.race([relay.exited.then(() => true), sleep(30000).then(() => false)]))) {
    killed = true;
    relay.child.kill('SIGKILL');
    await relay.exited;
  }
  const stop = {
    exit_code: relay.exit?.code ?? null,
    exit_signal: relay.exit?.signal ?? null,
    exit_ms: round((relay.exit?.at ?? performance.now()) - termAt, 0),
    killed_after_30s: killed,
  };
  const peakRssMb = round(Math.max(hwmKb, relay.peakRssKb) / 1024, 1);
  say(`relay exited with code ${stop.exit_code} after ${stop.exit_ms} ms; peak RSS ${peakRssMb} MiB (VmHWM ${round(hwmKb / 1024, 1)} MiB)`);

  // + Phase breakdown and CPU profile ---------------------------------------------------------
  let phases: Awaited<ReturnType<typeof phaseBreakdown>> | undefined;
  if (opts.phaseEvents > 0) {
    phases = await phaseBreakdown(db, topic, opts.history + opts.events + 1, opts.phaseEvents);
    say(
      `phases: ${fmt(phases.events_per_s)} events/s in-process; per batch ms claim ${phases.per_batch_ms.claim} / prepare ${phases.per_batch_ms.prepare} / ` +
        `send ${phases.per_batch_ms.send} / mark ${phases.per_batch_ms.mark}`,
    );
  }
  let profile: ProfileSummary | undefined;
  if (opts.cpuProf) {
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) {
      profile = summariseProfile(path.join(profDir, file), 25);
      writeFileSync(path.join(outDir, 'cpuprofile-summary.txt'), `${formatSummary(profile)}\n`);
    } else {
      say('no .cpuprofile written (did the relay exit cleanly?)');
    }
  }
  for (const [name, e] of Object.entries(explains)) writeFileSync(path.join(outDir, `explain-${name}.txt`), `${e.plan}\n`);

  // 7. Report ---------------------------------------------------------------------------------
  const kafkajsVersion = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/kafkajs/package.json'), 'utf8')).version as string;
  const pgClientVersion = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/pg/package.json'), 'utf8')).version as string;
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  const targets = {
    drain_ge_20000_per_s: verdict(drain.events_per_s >= 20000),
    ratio_ge_0_7: verdict(ratio >= 0.7),
    ...Object.fromEntries(offered.map((o) => [`p99_le_25ms_notify_${o.notify}`, verdict(o.latency_p99_ms <= 25)])),
    rss_le_150mb: verdict(peakRssMb <= 150),
  };
  const result = {
    bench: 'kes-outbox-relay',
    at: new Date().toISOString(),
    relay_git: relayGit,
    relay_session_options: relaySessionOptions || null,
    topic,
    events: opts.events,
    aggregates: opts.aggregates,
    history: opts.history,
    batch_size: batchSize,
    batch_size_source: opts.batchSize === undefined ? 'relay default' : 'flag',
    notify: opts.notify,
    payload_avg_bytes: round(Number(sizes.payload), 0),
    headers_json_avg_bytes: round(Number(sizes.headers), 0),
    table_rows_at_drain: Number(sizes.rows),
    table_mb_at_drain: round(Number(sizes.table_mb), 0),
    setup_history_s: round(historySeconds, 1),
    drain_events_per_s: drain.events_per_s,
    drain_s: drain.drain_s,
    relay_startup_s: drain.relay_startup_s,
    drain_wall_s: drain.wall_s,
    drain_wall_events_per_s: drain.wall_events_per_s,
    raw_events_per_s: raw.events_per_s,
    raw_s: raw.seconds,
    raw_requests: raw.requests,
    ratio,
    offered_rate: opts.rate,
    duration_s: opts.duration,
    latency_ms: Object.fromEntries(
      offered.map((o) => [o.notify, { p50: o.latency_p50_ms, p95: o.latency_p95_ms, p99: o.latency_p99_ms, max: o.latency_max_ms }]),
    ),
    offered: Object.fromEntries(offered.map((o) => [o.notify, o])),
    peak_rss_mb: peakRssMb,
    peak_rss_drain_mb: drain.peak_rss_mb,
    rss_before_stop_mb: rssBeforeStopMb,
    relay_exit_code: stop.exit_code,
    relay_exit_ms: stop.exit_ms,
    relay_exit_signal: stop.exit_signal,
    drain,
    raw,
    explain_ms: Object.fromEntries(Object.entries(explains).map(([k, e]) => [k, e.ms])),
    explain_jit_ms: Object.fromEntries(Object.entries(explains).map(([k, e]) => [k, e.jit_ms])),
    relay_env_overrides: envOverrides,
    vacuum_after_drain: vacuumAfterDrain,
    quiet_gates: quietGates,
    foreign_load_cores: {
      drain: round(drain.cpu.foreign_s / Math.max(0.001, drain.cpu.wall_s), 2),
      raw: round(raw.cpu.foreign_s / Math.max(0.001, raw.cpu.wall_s), 2),
      ...Object.fromEntries(offered.map((o) => [`offered_${o.notify}`, round(o.cpu.foreign_s / Math.max(0.001, o.cpu.wall_s), 2)])),
      ...(phases ? { phases: round(phases.cpu.foreign_s / Math.max(0.001, phases.cpu.wall_s), 2) } : {}),
    },
    relay_node_args: nodeArgs,
    count_pending_ms_at_backlog: round(countPendingMs, 1),
    phases: phases ?? null,
    cpu_profile: profile
      ? {
          file: path.relative(ROOT, profile.file),
          categories: profile.categories.slice(0, 12),
          attributed: profile.attributed.slice(0, 10),
          top_functions: profile.top_functions.slice(0, 12),
        }
      : null,
    relay_lifetime: relayWindow(new Map(), finalMetrics),
    relay_memory_before_stop: relayMemory(finalMetrics),
    targets,
    output_dir: path.relative(ROOT, outDir),
    machine: {
      cores,
      cpu_model: os.cpus()[0]?.model ?? 'unknown',
      ram_gib: round(os.totalmem() / 1024 ** 3, 1),
      node: process.version,
      postgres: pgVersion,
      postgres_settings: pgSettings,
      kafka: kafkaLocal.version ?? 'unknown',
      kafkajs: kafkajsVersion,
      pg_client: pgClientVersion,
    },
  };

  if (!opts.jsonOnly) {
    const rows: [string, string, string, string][] = [
      ['drain rate (events/s)', `${fmt(drain.events_per_s)}${contamination(drain.cpu)}`, '>= 20,000', targets.drain_ge_20000_per_s],
      ['  drain time after first dispatch (s)', fmt(drain.drain_s, 2), '', ''],
      ['  relay start-up to first dispatch (s)', fmt(drain.relay_startup_s, 2), '', ''],
      ['  wall incl. start-up (events/s)', fmt(drain.wall_events_per_s), '', ''],
      ['  relay batches / avg rows / avg claim ms', `${fmt(drain.relay.batches)} / ${fmt(drain.relay.avg_batch_rows, 1)} / ${fmt(drain.relay.claim_avg_ms, 2)}`, '', ''],
      [
        '  CPU s: relay/pg/kafka/bench/foreign',
        `${drain.cpu.relay_s} / ${drain.cpu.postgres_s} / ${drain.cpu.kafka_s} / ${drain.cpu.bench_s} / ${drain.cpu.foreign_s} in ${drain.cpu.wall_s} s`,
        '',
        '',
      ],
      ['raw kafkajs ceiling (events/s)', `${fmt(raw.events_per_s)}${contamination(raw.cpu)}`, '', ''],
      ['drain / raw', fmt(ratio, 3), '>= 0.7', targets.ratio_ge_0_7],
    ];
    for (const o of offered) {
      const target = opts.rate === 1000 ? '<= 25 (at 1,000/s)' : `<= 25 (at 1,000/s; ran ${fmt(opts.rate)}/s)`;
      rows.push(
        [
          `offered load, NOTIFY ${o.notify}`,
          `${fmt(o.committed)} tx, ${fmt(o.achieved_rate, 1)}/s achieved, ${o.late_writes} late (> ${LATE_MS} ms)${contamination(o.cpu)}`,
          '',
          '',
        ],
        ['  commit-to-ack p50 / p95 (ms)', `${fmt(o.latency_p50_ms, 1)} / ${fmt(o.latency_p95_ms, 1)}`, '', ''],
        ['  commit-to-ack p99 (ms)', fmt(o.latency_p99_ms, 1), target, verdict(o.latency_p99_ms <= 25)],
        ['  commit-to-ack max (ms)', fmt(o.latency_max_ms, 1), '', ''],
        ['  write tx p50 / p99 (ms)', `${fmt(o.write_tx_p50_ms, 2)} / ${fmt(o.write_tx_p99_ms, 2)}`, '', ''],
        ['  relay batches / avg rows / avg claim ms', `${fmt(o.relay.batches)} / ${fmt(o.relay.avg_batch_rows, 1)} / ${fmt(o.relay.claim_avg_ms, 2)}`, '', ''],
        [
          '  CPU s: relay/pg/kafka/bench/foreign',
          `${o.cpu.relay_s} / ${o.cpu.postgres_s} / ${o.cpu.kafka_s} / ${o.cpu.bench_s} / ${o.cpu.foreign_s} in ${o.cpu.wall_s} s`,
          '',
          '',
        ],
      );
      if (o.failed > 0) rows.push(['  writes failed', fmt(o.failed), '', '']);
    }
    rows.push(
      ['relay peak RSS (MiB)', fmt(peakRssMb, 1), '<= 150', targets.rss_le_150mb],
      ['relay exit on SIGTERM', `code ${stop.exit_code} after ${fmt(stop.exit_ms)} ms`, '', ''],
    );
    if (phases) {
      rows.push(
        ['in-process loop (events/s)', `${fmt(phases.events_per_s)}${contamination(phases.cpu)}`, '', ''],
        [
          '  per batch ms: claim/prepare/send/mark',
          `${phases.per_batch_ms.claim} / ${phases.per_batch_ms.prepare} / ${phases.per_batch_ms.send} / ${phases.per_batch_ms.mark}`,
          '',
          '',
        ],
        [
          '  share %: claim/prepare/send/mark',
          `${phases.share_pct.claim} / ${phases.share_pct.prepare} / ${phases.share_pct.send} / ${phases.share_pct.mark}`,
          '',
          '',
        ],
      );
    }
    const w = [44, 58, 22];
    const line = (r: string[]) => `${(r[0] ?? '').padEnd(w[0] ?? 0)} ${(r[1] ?? '').padEnd(w[1] ?? 0)} ${(r[2] ?? '').padEnd(w[2] ?? 0)} ${r[3] ?? ''}`;
    console.log('');
    console.log(
      `kes-outbox-relay benchmark: ${fmt(opts.events)} events, ${fmt(opts.aggregates)} aggregates, ${fmt(opts.history)} history rows, ` +
        `batch ${fmt(batchSize)}, notify ${opts.notify}`,
    );
    console.log(`relay at ${relayGit.commit}${relayGit.dirty ? ' (uncommitted changes)' : ''}; relay sessions: ${relaySessionOptions || 'server defaults'}`);
    console.log(
      `machine: ${cores} cores, ${result.machine.ram_gib} GiB, node ${process.version}, PostgreSQL ${pgVersion}, Kafka ${result.machine.kafka}, kafkajs ${kafkajsVersion}`,
    );
    if (Object.keys(envOverrides).length || nodeArgs.length) {
      console.log(`relay overrides: ${JSON.stringify(envOverrides)} node ${nodeArgs.join(' ')}`);
    }
    console.log('');
    console.log(line(['figure', 'value', 'target', '']));
    console.log(line(['-'.repeat(w[0] ?? 0), '-'.repeat(w[1] ?? 0), '-'.repeat(w[2] ?? 0), '----']));
    for (const r of rows) console.log(line(r));
    console.log('');
    const explainLine = Object.entries(explains)
      .map(([k, e]) => `${k} ${e.ms} ms${e.jit_ms ? ` (JIT ${e.jit_ms})` : ''}`)
      .join(', ');
    console.log(`EXPLAIN ANALYZE (plans in ${result.output_dir}/explain-*.txt): ${explainLine}`);
    if (profile) console.log(`\n${formatSummary({ ...profile, top_functions: profile.top_functions.slice(0, 15), top_files: profile.top_files.slice(0, 10) })}`);
    console.log('');
  }
  console.log(JSON.stringify(result));
}

try {
  await main();
  await releaseAll();
  process.exit(0);
} catch (error) {
  process.stderr.write(`relay-bench: failed: ${(error as Error).stack ?? String(error)}\n`);
  await releaseAll();
  process.exit(1);
}
