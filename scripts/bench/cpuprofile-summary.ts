// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by package and the hottest
// functions. Usable on its own: `tsx scripts/bench/cpuprofile-summary.ts FILE.cpuprofile [TOP]`.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  total_ms: number;
  /** Self time (ms) by category, busiest first; `idle` is time the event loop waited. */
  categories: { category: string; ms: number; pct_of_busy: number }[];
  /** Like categories, but Node core and native frames (Buffer, sockets, ...) are charged to the
   *  nearest calling package: "who caused this work". GC and (program) have no caller. */
  attributed: { category: string; ms: number; pct_of_busy: number }[];
  top_functions: { fn: string; where: string; category: string; ms: number; pct_of_busy: number }[];
  top_files: { file: string; category: string; ms: number; pct_of_busy: number }[];
}

/** Which package or runtime part a frame belongs to. */
export function categorise(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(garbage collector)') return 'gc';
    if (functionName === '(program)') return 'program (native/V8)';
    return `native ${functionName || '(anonymous)'}`.slice(0, 60);
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm) {
    const pkg = nm[1] ?? 'unknown';
    if (pkg === 'pg' || pkg.startsWith('pg-')) return `pg (${pkg})`;
    return pkg;
  }
  if (url.includes('/services/kes-outbox-relay/')) return 'relay (kes-outbox-relay)';
  if (url.includes('/packages/')) return 'workspace packages';
  if (url.startsWith('node:')) return `node core (${url.replace(/^node:/, '').split('/')[0] ?? url})`;
  return 'other';
}

export function summariseProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const isRuntime = (c: string) => c.startsWith('node core') || c.startsWith('native') || c === 'other';
  const attributedCategory = (id: number): string => {
    const own = byId.get(id);
    const ownCategory = own ? categorise(own.callFrame.url, own.callFrame.functionName) : 'other';
    if (!isRuntime(ownCategory)) return ownCategory;
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
      const n = byId.get(p);
      if (!n) break;
      const c = categorise(n.callFrame.url, n.callFrame.functionName);
      if (!isRuntime(c) && c !== 'native (root)') return c;
    }
    return 'node core (no package caller)';
  };
  const attributed = new Map<string, number>();
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] ?? -1;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const categories = new Map<string, number>();
  const functions = new Map<string, { fn: string; where: string; category: string; us: number }>();
  const files = new Map<string, { category: string; us: number }>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node || us <= 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const category = categorise(url, functionName);
    total += us;
    if (category === 'idle') idle += us;
    categories.set(category, (categories.get(category) ?? 0) + us);
    const charged = attributedCategory(id);
    attributed.set(charged, (attributed.get(charged) ?? 0) + us);
    const short = url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '').replace(/^.*\/(services|packages)\//, '$1/');
    const where = url ? `${short}:${lineNumber + 1}` : '';
    const key = `${functionName}@${where}`;
    const f = functions.get(key) ?? { fn: functionName || '(anonymous)', where, category, us: 0 };
    f.us += us;
    functions.set(key, f);
    if (url) {
      const fileEntry = files.get(short) ?? { category, us: 0 };
      fileEntry.us += us;
      files.set(short, fileEntry);
    }
  }
  const busy = Math.max(1, total - idle);
  const pct = (us: number) => Math.round((1000 * us) / busy) / 10;
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    file,
    total_ms: ms(total),
    categories: [...categories.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([category, us]) => ({ category, ms: ms(us), pct_of_busy: category === 'idle' ? NaN : pct(us) })),
    attributed: [...attributed.entries()]
      .filter(([category]) => category !== 'idle')
      .sort((a, b) => b[1] - a[1])
      .map(([category, us]) => ({ category, ms: ms(us), pct_of_busy: pct(us) })),
    top_functions: [...functions.values()]
      .filter((f) => f.category !== 'idle')
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ fn: f.fn, where: f.where, category: f.category, ms: ms(f.us), pct_of_busy: pct(f.us) })),
    top_files: [...files.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([fileName, f]) => ({ file: fileName, category: f.category, ms: ms(f.us), pct_of_busy: pct(f.us) })),
  };
}

export function formatSummary(s: ProfileSummary): string {
  const lines = [`CPU profile ${path.basename(s.file)}: ${s.total_ms} ms sampled`, '', 'self time by category (% of non-idle):'];
  for (const c of s.categories) {
    lines.push(`  ${c.category.padEnd(40)} ${String(c.ms).padStart(10)} ms  ${Number.isNaN(c.pct_of_busy) ? '' : `${c.pct_of_busy}%`}`);
  }
  lines.push('', 'self time charged to the nearest calling package (Buffer/socket work included):');
  for (const c of s.attributed) lines.push(`  ${c.category.padEnd(40)} ${String(c.ms).padStart(10)} ms  ${c.pct_of_busy}%`);
  lines.push('', 'hottest functions (self time):');
  for (const f of s.top_functions) {
    lines.push(`  ${String(f.pct_of_busy).padStart(5)}%  ${String(f.ms).padStart(9)} ms  ${f.fn}  ${f.where}`);
  }
  lines.push('', 'hottest files (self time):');
  for (const f of s.top_files) {
    lines.push(`  ${String(f.pct_of_busy).padStart(5)}%  ${String(f.ms).padStart(9)} ms  ${f.file}`);
  }
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: tsx scripts/bench/cpuprofile-summary.ts FILE.cpuprofile [TOP]');
    process.exit(2);
  }
  console.log(formatSummary(summariseProfile(file, Number(process.argv[3] ?? 25))));
}
