// `npm run runbook:walk`: walks ../shared/spec/seed-runbook.txt on this machine, in order, the
// way an operator would (no-Docker path unless Docker answers), and checks each expected
// output: infra up → migrate:all → dev:one + relay → health checks → Prometheus query →
// live smoke → Kafka smoke → both replay dry runs → Ctrl+C → downs. Prints a line per step
// and one final JSON line; exit 1 at the first failing step (after stopping what it started).
// `--keep-infra` skips the final downs (for a developer's machine).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

let keepInfra = false;
try {
  const { values } = parseArgs({ options: { 'keep-infra': { type: 'boolean', default: false }, help: { type: 'boolean' } }, strict: true });
  if (values.help) {
    console.log('usage: npm run runbook:walk [-- --keep-infra]');
    process.exit(0);
  }
  keepInfra = values['keep-infra'] === true;
} catch (error) {
  console.error(`runbook:walk: ${(error as Error).message}`);
  process.exit(2);
}

interface StepResult {
  step: string;
  ok: boolean;
  ms: number;
  detail?: string;
}
const results: StepResult[] = [];
const background: { name: string; child: ChildProcess; output: string[] }[] = [];

function lastJson(output: string): Record<string, unknown> {
  const lines = output.trim().split('\n').reverse();
  for (const line of lines) {
    const trimmed = line.trim();
    if (trimmed.startsWith('{') && trimmed.endsWith('}')) {
      try {
        return JSON.parse(trimmed) as Record<string, unknown>;
      } catch {
        // not JSON after all
      }
    }
  }
  return {};
}

function run(args: string[], timeoutMs = 300_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(npm, args, { cwd: root, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += String(d)));
    child.stderr.on('data', (d) => (output += String(d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function step(name: string, fn: () => Promise<string | void>): Promise<void> {
  const started = Date.now();
  try {
    const detail = (await fn()) ?? undefined;
    const ms = Date.now() - started;
    results.push({ step: name, ok: true, ms, ...(detail ? { detail } : {}) });
    console.log(`ok   ${name} (${(ms / 1000).toFixed(1)} s)${detail ? ` — ${detail}` : ''}`);
  } catch (error) {
    const ms = Date.now() - started;
    const detail = (error as Error).message;
    results.push({ step: name, ok: false, ms, detail });
    console.log(`FAIL ${name} (${(ms / 1000).toFixed(1)} s) — ${detail}`);
    await cleanup();
    console.log(JSON.stringify({ ok: false, failedStep: name, error: detail, steps: results }));
    process.exit(1);
  }
}

/** `npm run <script>` must exit 0; returns its output. */
async function npmRun(args: string[], timeoutMs?: number): Promise<string> {
  const { code, output } = await run(args, timeoutMs);
  if (code !== 0) throw new Error(`npm ${args.join(' ')} exited ${code}: ${output.trim().split('\n').slice(-5).join(' | ')}`);
  return output;
}

function expectJsonOk(output: string, extra: (json: Record<string, unknown>) => string | void = () => undefined): string {
  const json = lastJson(output);
  if (json.ok !== true) throw new Error(`expected "ok": true, got ${JSON.stringify(json).slice(0, 400)}`);
  return extra(json) ?? '"ok": true';
}

async function poll<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what}${last ? ` (${last})` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function startBackground(name: string, args: string[]) {
  const child = spawn(npm, args, { cwd: root, env: process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: process.platform !== 'win32' });
  const output: string[] = [];
  child.stdout?.on('data', (d) => output.push(String(d)));
  child.stderr?.on('data', (d) => output.push(String(d)));
  background.push({ name, child, output });
}

/** Ctrl+C: SIGINT to the process group, as a terminal does. Resolves with the exit code. */
function interrupt(child: ChildProcess, timeoutMs = 30_000): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      resolve(null);
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    try {
      process.kill(-child.pid!, 'SIGINT');
    } catch {
      child.kill('SIGINT');
    }
  });
}

async function cleanup() {
  for (const b of background) await interrupt(b.child, 15_000);
}

async function health(port: number, expectServices = false): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3000) });
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200 || body.ok !== true) throw new Error(`:${port}/health answered ${res.status} ${JSON.stringify(body)}`);
  if (expectServices && typeof body.services !== 'object') throw new Error(`:${port}/health has no "services"`);
  return `{"ok":true,...}`;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

console.log('Walking the KES outbox E2E runbook (../shared/spec/seed-runbook.txt)\n');

await step('npm run db:up', async () => void (await npmRun(['run', 'db:up'])));
await step('npm run kafka:up', async () => void (await npmRun(['run', 'kafka:up'])));
await step('npm run monitoring:up', async () => void (await npmRun(['run', 'monitoring:up'])));
await step('npm run migrate:all', async () => expectJsonOk(await npmRun(['run', 'migrate:all'])));
await step('npm run dev:one (background)', async () => {
  for (const port of [4100, 4020, 4060, 4001]) if (await portOpen(port)) throw new Error(`port ${port} is taken before dev:one`);
  startBackground('dev:one', ['run', 'dev:one']);
});
await step('npm run relay:kes-outbox:dev (second terminal)', async () => startBackground('relay', ['run', 'relay:kes-outbox:dev']));
await step('curl -sS http://127.0.0.1:4100/health', () => poll('svc-auth not healthy', 90_000, () => health(4100)));
await step('curl -sS http://127.0.0.1:4020/health', () => poll('gateway not healthy', 90_000, () => health(4020, true)));
await step('curl -sS http://127.0.0.1:4060/health', () => poll('svc-tenders not healthy', 90_000, () => health(4060)));
await step('relay /health (http://127.0.0.1:4061/health)', () => poll('relay not healthy', 90_000, () => health(4061)));
await step('curl -sS "http://127.0.0.1:9090/api/v1/query?query=kes_outbox_relay_up"', () =>
  poll('kes_outbox_relay_up is not 1 in Prometheus', 60_000, async () => {
    const res = await fetch('http://127.0.0.1:9090/api/v1/query?query=kes_outbox_relay_up');
    const body = (await res.json()) as { status: string; data: { result: { value: [number, string] }[] } };
    const values = body.data.result.map((r) => r.value[1]);
    return body.status === 'success' && values.includes('1') ? `kes_outbox_relay_up = ${values.join(',')}` : undefined;
  }),
);
await step('npm run tenders:outbox:live-smoke', async () =>
  expectJsonOk(await npmRun(['run', '-s', 'tenders:outbox:live-smoke']), (j) => `"ok": true in ${Object.values(j.steps as Record<string, number>).reduce((a, b) => a + b, 0)} ms`),
);
await step('npm run kafka:kes-smoke', async () => expectJsonOk(await npmRun(['run', '-s', 'kafka:kes-smoke']), (j) => `"ok": true, round trip ${j.roundTripMs} ms`));
await step('npm --prefix services/svc-tenders run replay:kes-dlq -- --from-beginning --max-messages 50', async () =>
  expectJsonOk(await npmRun(['--prefix', 'services/svc-tenders', 'run', 'replay:kes-dlq', '--', '--from-beginning', '--max-messages', '50']), (j) => {
    if (j.mode !== 'dry-run') throw new Error(`expected a dry run, got mode ${String(j.mode)}`);
    return `dry run, listed ${String(j.listed)}`;
  }),
);
await step('npm --prefix services/svc-tenders run replay:kes-outbox-poison -- --max-rows 50', async () =>
  expectJsonOk(await npmRun(['--prefix', 'services/svc-tenders', 'run', 'replay:kes-outbox-poison', '--', '--max-rows', '50']), (j) => {
    if (j.mode !== 'dry-run') throw new Error(`expected a dry run, got mode ${String(j.mode)}`);
    return `dry run, listed ${String(j.listed)}`;
  }),
);
await step('Ctrl+C in the dev:one and relay terminals', async () => {
  // npm itself dies of the SIGINT like in a terminal; what counts is that the processes it ran
  // shut down cleanly (their own "stopped" lines) and freed their ports.
  const stoppedMarker: Record<string, RegExp> = { 'dev:one': /dev:one: all stopped/, relay: /"msg":"stopped"/ };
  const codes: string[] = [];
  for (const b of background.reverse()) {
    const code = await interrupt(b.child);
    await new Promise((r) => setTimeout(r, 500));
    codes.push(`${b.name} stopped`);
    if (!stoppedMarker[b.name]?.test(b.output.join(''))) {
      throw new Error(`${b.name} did not stop cleanly on Ctrl+C (exit ${code}): ${b.output.join('').trim().split('\n').slice(-3).join(' | ')}`);
    }
  }
  for (const port of [4100, 4020, 4060, 4061, 4001]) if (await portOpen(port)) throw new Error(`port ${port} still open after Ctrl+C`);
  return codes.join(', ');
});
if (!keepInfra) {
  await step('npm run monitoring:down', async () => {
    await npmRun(['run', 'monitoring:down']);
    if (await portOpen(9090)) throw new Error('port 9090 still open');
  });
  await step('npm run kafka:down', async () => {
    await npmRun(['run', 'kafka:down']);
    const port = Number(process.env.KAFKA_PORT ?? 9092);
    if (await portOpen(port)) throw new Error(`port ${port} still open`);
  });
  await step('npm run db:down (docker compose -f docker-compose.postgres.yml down with Docker)', async () =>
    (await npmRun(['run', 'db:down'])).trim().split('\n').at(-1),
  );
}
console.log(JSON.stringify({ ok: true, steps: results }));
