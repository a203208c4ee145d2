// `npm start`: the main job on a fresh clone. Brings up the infrastructure (Docker Compose when
// an engine answers, else the embedded local defaults), migrates, checks Kafka, starts the
// services and the relay, runs the live smoke, and keeps everything up until Ctrl+C.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './infra/lib.js';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function step(title, args, { optional = false } = {}) {
  process.stdout.write(`\n== ${title}: npm ${args.join(' ')}\n`);
  const r = spawnSync(npm, args, { cwd: repoRoot, stdio: 'inherit', env: process.env });
  if (r.status !== 0) {
    if (optional) {
      process.stdout.write(`-- ${title} failed (exit ${r.status}); continuing without it\n`);
      return false;
    }
    process.stderr.write(`main job stopped: "${title}" failed (exit ${r.status})\n`);
    process.exit(r.status ?? 1);
  }
  return true;
}

step('PostgreSQL', ['run', 'db:up']);
step('Kafka', ['run', 'kafka:up']);
step('Prometheus', ['run', 'monitoring:up'], { optional: true });
step('migrations', ['run', 'migrate:all']);
step('dev seed', ['run', 'seed:dev']);
step('Kafka smoke', ['run', '-s', 'kafka:kes-smoke']);

// The long-running part: the dev stack and the relay, each in its own process group so that
// stopping the main job (Ctrl+C, SIGTERM) reaches every process they started.
const children = [];
function start(name, command, args, cwd = repoRoot) {
  process.stdout.write(`\n== starting ${name}: ${[path.basename(command), ...args].join(' ')}\n`);
  const child = spawn(command, args, {
    cwd,
    stdio: 'inherit',
    env: { KES_ENV: 'development', ...process.env },
    detached: process.platform !== 'win32',
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`${name} exited (${signal ?? code}); stopping the main job\n`);
      stopAll(1);
    }
  });
  children.push(child);
}

function signal(child, sig) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    if (process.platform === 'win32') child.kill(sig);
    else process.kill(-child.pid, sig);
  } catch {
    // already gone
  }
}

let stopping = false;
function stopAll(code) {
  if (stopping) return;
  stopping = true;
  for (const child of children) signal(child, 'SIGTERM');
  const timer = setTimeout(() => {
    for (const child of children) signal(child, 'SIGKILL');
    process.exit(code);
  }, 15000);
  timer.unref();
  let left = children.filter((c) => c.exitCode === null && c.signalCode === null).length;
  if (left === 0) process.exit(code);
  for (const child of children) child.once('exit', () => --left === 0 && process.exit(code));
}
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

const tsx = path.join(repoRoot, 'node_modules', '.bin', process.platform === 'win32' ? 'tsx.cmd' : 'tsx');
start('dev stack (dev:one)', process.execPath, [path.join('scripts', 'dev-one.js')]);
start('outbox relay (relay:kes-outbox:dev)', tsx, ['watch', '--conditions=kvary-source', 'src/main.ts'], path.join(repoRoot, 'services', 'kes-outbox-relay'));

// The smoke waits for the services' health itself (bounded), then reports one JSON object.
const smoke = spawn(npm, ['run', '-s', 'tenders:outbox:live-smoke'], {
  cwd: repoRoot,
  stdio: 'inherit',
  env: { KES_SMOKE_WAIT_MS: '90000', ...process.env },
});
smoke.on('exit', (code) => {
  if (code === 0) {
    process.stdout.write('\nmain job: stack is up and the live smoke passed. Ctrl+C stops everything.\n');
  } else {
    process.stderr.write('\nmain job: the live smoke failed (see its JSON above); stopping.\n');
    stopAll(1);
  }
});
