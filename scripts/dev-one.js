// `npm run dev:one`: auth (4100), gateway (4020), tenders (4060) and the dev OIDC provider
// (4001) in one terminal: prefixed logs, reload on change (tsx watch), Ctrl+C stops all.
// The relay runs in a second terminal (`npm run relay:kes-outbox:dev`), as the runbook says.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { isMain, repoRoot } from './infra/lib.js';

const tsx = path.join(repoRoot, 'node_modules', '.bin', process.platform === 'win32' ? 'tsx.cmd' : 'tsx');

export const DEV_SERVICES = [
  { name: 'auth', dir: 'services/svc-auth', port: Number(process.env.AUTH_PORT || 4100), env: { TRUST_PROXY: 'true' } },
  { name: 'tenders', dir: 'services/svc-tenders', port: Number(process.env.TENDERS_PORT || 4060), env: { TRUST_PROXY: 'true' } },
  { name: 'gateway', dir: 'services/gateway', port: Number(process.env.GATEWAY_PORT || 4020), env: {} },
  { name: 'oidc', dir: 'services/dev-oidc', port: Number(process.env.DEV_OIDC_PORT || 4001), env: {} },
];

const colours = [36, 35, 32, 33, 34];
const useColour = process.stdout.isTTY === true;
const levels = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** True when nothing listens on the port (we can bind it ourselves). */
export function portFree(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Pino JSON lines become "HH:MM:SS LEVEL message {extra}"; anything else passes as is. */
function formatLine(line) {
  if (!line.startsWith('{')) return line;
  try {
    const { time, level, msg, pid: _pid, hostname: _h, name: _n, ...rest } = JSON.parse(line);
    const t = new Date(time ?? Date.now()).toISOString().slice(11, 19);
    const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
    return `${t} ${levels[level] ?? level} ${msg ?? ''}${extra}`;
  } catch {
    return line;
  }
}

function main() {
  const production = process.env.KES_ENV === 'production';
  const services = DEV_SERVICES.filter((s) => !(production && s.name === 'oidc'));
  const width = Math.max(...services.map((s) => s.name.length));
  const children = [];
  let stopping = false;

  const stopAll = (code) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\ndev:one: stopping ${children.length} process(es)...\n`);
    for (const { child } of children) signalGroup(child, 'SIGTERM');
    const kill = setTimeout(() => {
      for (const { child } of children) signalGroup(child, 'SIGKILL');
      process.exit(code);
    }, 10000);
    kill.unref();
    let left = children.filter(({ child }) => child.exitCode === null && child.signalCode === null).length;
    if (left === 0) process.exit(code);
    for (const { child } of children) {
      child.once('exit', () => {
        if (--left === 0) {
          process.stdout.write('dev:one: all stopped\n');
          process.exit(code);
        }
      });
    }
  };

  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));

  services.forEach((service, i) => {
    const label = service.name.padEnd(width);
    const prefix = useColour ? `\x1b[${colours[i % colours.length]}m[${label}]\x1b[0m ` : `[${label}] `;
    // Each service gets its own process group so Ctrl+C reaches tsx and the node it runs.
    const child = spawn(tsx, ['watch', '--conditions=kvary-source', 'src/main.ts'], {
      cwd: path.join(repoRoot, service.dir),
      env: { KES_ENV: 'development', ...process.env, ...service.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: process.platform !== 'win32',
    });
    for (const stream of [child.stdout, child.stderr]) {
      readline.createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix}${formatLine(line)}\n`));
    }
    child.on('exit', (code, signal) => {
      if (stopping) return;
      process.stdout.write(`${prefix}exited (${signal ?? code}); stopping the others\n`);
      stopAll(1);
    });
    children.push({ service, child });
  });
  process.stdout.write(
    `dev:one: ${services.map((s) => `${s.name} :${s.port}`).join(', ')} — Ctrl+C stops all; the relay runs with npm run relay:kes-outbox:dev\n`,
  );
}

function signalGroup(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    if (process.platform === 'win32') child.kill(signal);
    else process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

if (isMain(import.meta.url)) {
  // Fail fast on a taken port, before starting anything.
  const production = process.env.KES_ENV === 'production';
  const taken = [];
  for (const s of DEV_SERVICES) {
    if (production && s.name === 'oidc') continue;
    if (!(await portFree(s.port))) taken.push(s);
  }
  if (taken.length) {
    for (const s of taken) {
      process.stderr.write(`dev:one: port ${s.port} (${s.name}) is already in use (EADDRINUSE); free it with: node scripts/free-port.js ${s.port}\n`);
    }
    process.exit(1);
  }
  main();
}
