// Helpers of the relay benchmark: flag parsing, percentiles, /proc readers (RSS, CPU ticks),
// Prometheus text parsing, versions, and the synthetic event generator (SQL and JS twins).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

// ---------------------------------------------------------------------------------------------
// Flags

export type NotifyMode = 'on' | 'off' | 'both';

export interface BenchOptions {
  events: number;
  aggregates: number;
  history: number;
  rate: number;
  duration: number;
  /** undefined: the relay's own default (KES_RELAY_BATCH_SIZE not set). */
  batchSize: number | undefined;
  notify: NotifyMode;
  jsonOnly: boolean;
  /** Rows for the in-process phase breakdown after the relay stopped (0: skip). */
  phaseEvents: number;
  /** Run the relay under `node --cpu-prof` and summarise the profile. */
  cpuProf: boolean;
}

export class FlagError extends Error {}

type FlagSpec =
  | { kind: 'int'; min: number; max: number }
  | { kind: 'num'; min: number; max: number }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'bool' };

const FLAGS: Record<string, FlagSpec> = {
  events: { kind: 'int', min: 1, max: 50_000_000 },
  aggregates: { kind: 'int', min: 1, max: 10_000_000 },
  history: { kind: 'int', min: 0, max: 100_000_000 },
  rate: { kind: 'num', min: 0.001, max: 100_000 },
  duration: { kind: 'num', min: 0.1, max: 3600 },
  'batch-size': { kind: 'int', min: 1, max: 10_000 }, // the relay's own bound (config.ts)
  notify: { kind: 'enum', values: ['on', 'off', 'both'] },
  'json-only': { kind: 'bool' },
  'phase-events': { kind: 'int', min: 0, max: 50_000_000 },
  'cpu-prof': { kind: 'bool' },
};

export const USAGE = `usage: npm run bench:relay -- [--events N] [--aggregates N] [--history N] [--rate R]
       [--duration S] [--batch-size N] [--notify on|off|both] [--json-only]
       [--phase-events N] [--cpu-prof]`;

function describe(spec: FlagSpec): string {
  switch (spec.kind) {
    case 'int':
      return `an integer from ${spec.min} to ${spec.max}`;
    case 'num':
      return `a number from ${spec.min} to ${spec.max}`;
    case 'enum':
      return spec.values.join('|');
    case 'bool':
      return 'no value';
  }
}

/** Parses argv (without node and script). Throws FlagError with a one-line message. */
export function parseArgs(argv: string[]): BenchOptions | 'help' {
  const raw = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return 'help';
    const match = /^--([a-z][a-z-]*)(?:=(.*))?$/.exec(arg);
    if (!match) throw new FlagError(`bad flag ${JSON.stringify(arg)}: not a --flag (see --help)`);
    const name = match[1] ?? '';
    const spec = FLAGS[name];
    if (!spec) throw new FlagError(`bad flag --${name}: unknown flag (see --help)`);
    if (raw.has(name)) throw new FlagError(`bad flag --${name}: given twice`);
    if (spec.kind === 'bool') {
      if (match[2] !== undefined) throw new FlagError(`bad flag --${name}: takes no value`);
      raw.set(name, true);
      continue;
    }
    let value = match[2];
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new FlagError(`bad flag --${name}: missing value (${describe(spec)})`);
      value = next;
      i++;
    }
    raw.set(name, value);
  }

  const get = (name: string): string | true | undefined => raw.get(name);
  const num = (name: string, fallback: number): number => {
    const spec = FLAGS[name];
    const value = get(name);
    if (value === undefined || spec === undefined) return fallback;
    if (spec.kind !== 'int' && spec.kind !== 'num') return fallback;
    const text = String(value).replaceAll('_', '');
    const ok = spec.kind === 'int' ? /^\d+$/.test(text) : /^\d+(\.\d+)?$|^\.\d+$/.test(text);
    const n = Number(text);
    if (!ok || !Number.isFinite(n) || n < spec.min || n > spec.max || (spec.kind === 'int' && !Number.isSafeInteger(n))) {
      throw new FlagError(`bad flag --${name}: expected ${describe(spec)}, got ${JSON.stringify(value)}`);
    }
    return n;
  };

  const notifyRaw = get('notify');
  if (notifyRaw !== undefined && !['on', 'off', 'both'].includes(String(notifyRaw))) {
    throw new FlagError(`bad flag --notify: expected on|off|both, got ${JSON.stringify(notifyRaw)}`);
  }
  const events = num('events', 200_000);
  return {
    events,
    aggregates: num('aggregates', 20_000),
    history: num('history', 1_000_000),
    rate: num('rate', 1000),
    duration: num('duration', 30),
    batchSize: get('batch-size') === undefined ? undefined : num('batch-size', 0),
    notify: (notifyRaw ?? 'on') as NotifyMode,
    jsonOnly: get('json-only') === true,
    phaseEvents: Math.min(events, num('phase-events', 50_000)),
    cpuProf: get('cpu-prof') === true,
  };
}

// ---------------------------------------------------------------------------------------------
// Statistics

/** Linear interpolation between closest ranks: the same definition as SQL percentile_cont. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] ?? NaN;
  const b = sorted[hi] ?? NaN;
  return a + (b - a) * (pos - lo);
}

export const round = (n: number, digits = 1): number => {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// /proc: memory and CPU of processes (Linux only; other platforms get undefined)

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM), undefined when unreadable. */
export function procStatusKb(pid: number, field: string): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

let clockTicks: number | undefined;
export function clkTck(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number((r.stdout ?? '').trim());
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

function readStat(pid: string): { comm: string; ppid: number; ticks: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const fields = text.slice(close + 2).split(' ');
    // fields[0] is state (field 3), fields[1] ppid; utime and stime are fields 14 and 15.
    return { comm, ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

function readCmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
}

/**
 * relay, bench (this process and its launchers), postgres (backends of the bench database,
 * their parallel workers, and the server's own background processes), kafka, kernel threads,
 * and foreign: everything else, i.e. other people's work on a shared machine.
 */
export type CpuGroup = 'relay' | 'bench' | 'postgres' | 'kafka' | 'kernel' | 'foreign';
const GROUPS: CpuGroup[] = ['relay', 'bench', 'postgres', 'kafka', 'kernel', 'foreign'];

export interface CpuUsage {
  wall_s: number;
  /** CPU seconds per group over the window (sampled every 500 ms: processes that live
   *  shorter than that may be missed, see unattributed_s). */
  relay_s: number;
  bench_s: number;
  postgres_s: number;
  kafka_s: number;
  kernel_s: number;
  /** Other sessions on a shared machine (other databases' backends, tsc, vitest, ...). */
  foreign_s: number;
  /** Machine busy time no sampled process accounts for (very short processes, interrupts). */
  unattributed_s: number;
  machine_busy_s: number;
  /** Time the hypervisor ran someone else on our virtual CPUs (part of machine_busy_s). */
  steal_s: number;
  /** 1.0 = every core busy. */
  machine_util: number;
}

interface PidState {
  group: CpuGroup;
  ticks: number;
}

/**
 * Samples /proc every 500 ms so that processes which exit inside a window (Postgres parallel
 * workers, other sessions' short commands) are still charged to the right group.
 */
export class CpuTracker {
  private readonly pids = new Map<number, PidState>();
  private readonly backendDb = new Map<number, string>();
  private readonly benchPids = new Set<number>();
  private readonly timer: NodeJS.Timeout;
  private busy = 0;
  private total = 0;
  private steal = 0;
  relayPid: number | undefined;

  constructor(
    private readonly database: string,
    readonly kafkaPid: number | undefined,
    private readonly cores: number,
  ) {
    // This process and its launchers (tsx, npm, sh) are the bench.
    for (let pid = process.pid; pid > 1; ) {
      this.benchPids.add(pid);
      const stat = readStat(String(pid));
      if (!stat) break;
      pid = stat.ppid;
    }
    this.scan();
    this.timer = setInterval(() => this.scan(), 500);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private classify(pid: number, stat: { comm: string; ppid: number }): CpuGroup {
    if (pid === this.relayPid) return 'relay';
    if (this.benchPids.has(pid)) return 'bench';
    if (pid === this.kafkaPid) return 'kafka';
    if (stat.ppid === 2 || pid === 2) return 'kernel';
    if (stat.comm === 'postgres' || stat.comm.startsWith('postgres')) {
      const title = readCmdline(String(pid));
      // "postgres: 15/main: <user> <db> <host> <state>" or "... parallel worker for PID n"
      const worker = /parallel worker for PID (\d+)/.exec(title);
      if (worker) return (this.backendDb.get(Number(worker[1])) ?? this.database) === this.database ? 'postgres' : 'foreign';
      const backend = /^postgres: [^:]+: (\S+) (\S+) /.exec(title);
      if (backend && !/^(checkpointer|background|walwriter|autovacuum|logical|archiver|stats)/.test(backend[1] ?? '')) {
        const db = backend[2] ?? '';
        this.backendDb.set(pid, db);
        return db === this.database ? 'postgres' : 'foreign';
      }
      return 'postgres'; // postmaster and background processes serve everyone; counted as ours
    }
    return 'foreign';
  }

  scan(): void {
    let entries: string[] = [];
    try {
      entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
    } catch {
      return; // not Linux
    }
    for (const entry of entries) {
      const stat = readStat(entry);
      if (!stat) continue;
      const pid = Number(entry);
      const known = this.pids.get(pid);
      if (known && pid !== this.relayPid) known.ticks = stat.ticks;
      else this.pids.set(pid, { group: this.classify(pid, stat), ticks: stat.ticks });
    }
    try {
      const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
      const v = line.trim().split(/\s+/).slice(1).map(Number);
      // user nice system idle iowait irq softirq steal (guest is included in user)
      this.total = v.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
      this.busy = this.total - (v[3] ?? 0) - (v[4] ?? 0);
      this.steal = v[7] ?? 0;
    } catch {
      // not Linux
    }
  }

  /** Starts a window; call end() on the result for the CPU used inside it. */
  window(): CpuWindow {
    this.scan();
    const base = new Map<number, number>();
    for (const [pid, st] of this.pids) base.set(pid, st.ticks);
    return new CpuWindow(this, base, this.busy, this.total, this.steal, performance.now());
  }

  /** @internal */
  usageSince(base: Map<number, number>, busy0: number, total0: number, steal0: number, t0: number): CpuUsage {
    this.scan();
    const hz = clkTck();
    const sums: Record<CpuGroup, number> = { relay: 0, bench: 0, postgres: 0, kafka: 0, kernel: 0, foreign: 0 };
    for (const [pid, st] of this.pids) sums[st.group] += Math.max(0, st.ticks - (base.get(pid) ?? 0));
    const wall = (performance.now() - t0) / 1000;
    const busy = (this.busy - busy0) / hz;
    const totalTicks = this.total - total0;
    const attributed = GROUPS.reduce((a, g) => a + sums[g], 0) / hz;
    return {
      wall_s: round(wall, 2),
      relay_s: round(sums.relay / hz, 2),
      bench_s: round(sums.bench / hz, 2),
      postgres_s: round(sums.postgres / hz, 2),
      kafka_s: round(sums.kafka / hz, 2),
      kernel_s: round(sums.kernel / hz, 2),
      foreign_s: round(sums.foreign / hz, 2),
      unattributed_s: round(Math.max(0, busy - attributed), 2),
      machine_busy_s: round(busy, 2),
      steal_s: round((this.steal - steal0) / hz, 2),
      machine_util: totalTicks > 0 ? round((this.busy - busy0) / totalTicks, 3) : round(busy / wall / this.cores, 3),
    };
  }

  /** Waits until other sessions use less than maxCores for a whole second (at most maxWaitMs). */
  async waitQuiet(maxCores: number, maxWaitMs: number): Promise<{ waited_s: number; foreign_cores: number }> {
    const t0 = performance.now();
    for (;;) {
      const w = this.window();
      await sleep(1000);
      const u = w.end();
      const foreign = u.foreign_s / Math.max(0.001, u.wall_s);
      if (foreign < maxCores || performance.now() - t0 > maxWaitMs) {
        return { waited_s: round((performance.now() - t0) / 1000, 1), foreign_cores: round(foreign, 2) };
      }
    }
  }
}

export class CpuWindow {
  constructor(
    private readonly tracker: CpuTracker,
    private readonly base: Map<number, number>,
    private readonly busy: number,
    private readonly total: number,
    private readonly steal: number,
    private readonly t0: number,
  ) {}

  end(): CpuUsage {
    return this.tracker.usageSince(this.base, this.busy, this.total, this.steal, this.t0);
  }
}

// ---------------------------------------------------------------------------------------------
// Kafka broker version and pid (from the process running kafka.Kafka on this machine)

export function findLocalKafka(): { pid?: number; version?: string } {
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return {};
  }
  for (const entry of entries) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!args.includes('kafka.Kafka')) continue;
    const cpIndex = args.findIndex((a) => a === '-cp' || a === '-classpath');
    const classpath = cpIndex >= 0 ? (args[cpIndex + 1] ?? '') : '';
    const jars: string[] = [];
    for (const item of classpath.split(':')) {
      if (item.endsWith('/*')) {
        try {
          jars.push(...readdirSync(item.slice(0, -2)));
        } catch {
          // unreadable
        }
      } else {
        jars.push(path.basename(item));
      }
    }
    let version: string | undefined;
    for (const jar of jars) {
      const m = /^kafka-server-(\d[\w.-]*)\.jar$/.exec(jar) ?? /^kafka_\d+\.\d+-(\d[\w.-]*)\.jar$/.exec(jar);
      if (m && !jar.includes('-test')) {
        version = m[1];
        break;
      }
    }
    return { pid: Number(entry), version };
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Prometheus text format: sums every series of a metric name

export function parsePrometheus(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[2]);
    if (!Number.isFinite(value)) continue;
    const name = m[1] ?? '';
    sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return sums;
}

// ---------------------------------------------------------------------------------------------
// Synthetic events. The SQL and the JS generators produce the same shapes (~500-byte payloads,
// uuid-like aggregate ids `md5('agg:' || k)::uuid`, traceparent + x-request-id headers).

export const BENCH_AGGREGATE_TYPE = 'tender';
export const BENCH_EVENT_TYPE = 'kvary.tenders.tender.updated';
export const BENCH_SOURCE = '/kvary/svc-tenders';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const asUuid = (hex: string) => `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;

/** Aggregate id number k, identical to the SQL expression md5('agg:' || k)::uuid::text. */
export const aggregateId = (k: number) => asUuid(md5(`agg:${k}`));

/** SQL for the aggregate id of row g (a hash-spread choice among `aggregates`). */
export const sqlAggregate = (aggregates: number) => `md5('agg:' || ((hashint8(g) & 2147483647) % ${aggregates}))::uuid::text`;

/** SQL payload of row g for aggregate a (text column) and timestamp expression ts. */
export const SQL_PAYLOAD = `jsonb_build_object(
   'tenderId', a,
   'sequence', g,
   'status', (ARRAY['draft','published','amended','awarded','closed'])[1 + (g % 5)::int],
   'title', 'Supply of ' || substr(md5(g::text), 1, 16) || ' laboratory equipment, lot ' || (g % 7 + 1),
   'buyer', jsonb_build_object('id', md5(a || ':buyer')::uuid, 'name', 'Municipality of ' || initcap(substr(md5(a), 1, 10)), 'country', 'EE'),
   'budget', jsonb_build_object('amount', round(((hashint8(g) & 16777215) / 100.0)::numeric, 2), 'currency', 'EUR'),
   'cpv', jsonb_build_array('38000000', '33100000'),
   'deadline', to_char(timestamptz '2025-01-01' + (g % 365) * interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
   'description', md5(g::text || ':d'),
   'changedBy', md5(a || ':user')::uuid)`;

export const SQL_HEADERS = `jsonb_build_object(
   'traceparent', '00-' || md5(g::text || ':t') || '-' || substr(md5(g::text || ':s'), 1, 16) || '-01',
   'x-request-id', md5(g::text || ':r')::uuid)`;

const STATUSES = ['draft', 'published', 'amended', 'awarded', 'closed'];

/** The JS twin of SQL_PAYLOAD (used by the offered-load writers). */
export function jsPayload(seq: number, aggregate: string): Record<string, unknown> {
  const name = md5(aggregate).slice(0, 10);
  return {
    tenderId: aggregate,
    sequence: seq,
    status: STATUSES[seq % 5],
    title: `Supply of ${md5(String(seq)).slice(0, 16)} laboratory equipment, lot ${(seq % 7) + 1}`,
    buyer: { id: asUuid(md5(`${aggregate}:buyer`)), name: `Municipality of ${name.charAt(0).toUpperCase()}${name.slice(1)}`, country: 'EE' },
    budget: { amount: Math.round(Math.random() * 16_777_215) / 100, currency: 'EUR' },
    cpv: ['38000000', '33100000'],
    deadline: new Date(Date.UTC(2025, 0, 1 + (seq % 365))).toISOString().replace('.000Z', 'Z'),
    description: md5(`${seq}:d`),
    changedBy: asUuid(md5(`${aggregate}:user`)),
  };
}

export function jsHeaders(seq: number): Record<string, string> {
  return {
    traceparent: `00-${md5(`${seq}:t`)}-${md5(`${seq}:s`).slice(0, 16)}-01`,
    'x-request-id': asUuid(md5(`${seq}:r`)),
  };
}
