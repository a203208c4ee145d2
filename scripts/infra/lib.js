// Helpers shared by the infrastructure scripts (db, kafka, monitoring): Docker detection,
// the ignored .local/ state folder, pid files, and waiting for TCP ports.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const localDir = path.join(repoRoot, '.local');

/** A folder under .local/, created when missing. */
export function localPath(...parts) {
  const dir = path.join(localDir, ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function say(message) {
  process.stdout.write(`${message}\n`);
}

/** Ends the process with one clear line on stderr. */
export function fail(message, code = 1) {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

/**
 * True when a Docker engine answers (not merely when the client is installed).
 * KES_INFRA=local forces the embedded defaults, KES_INFRA=docker forces Docker.
 */
export function dockerAvailable() {
  const mode = process.env.KES_INFRA;
  if (mode === 'local') return false;
  if (mode === 'docker') return true;
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 5000,
  });
  return r.status === 0 && r.stdout.toString().trim().length > 0;
}

/** Runs `docker compose -f <file> <args>` in the repo root, inheriting stdio. */
export function compose(file, args) {
  const r = spawnSync('docker', ['compose', '-f', path.join(repoRoot, file), ...args], {
    stdio: 'inherit',
    cwd: repoRoot,
  });
  if (r.status !== 0) fail(`docker compose -f ${file} ${args.join(' ')} failed (exit ${r.status})`);
}

export function commandExists(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
  return r.status === 0;
}

export function readPid(file) {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function writePid(file, pid) {
  writeFileSync(file, `${pid}\n`);
}

export function removeFile(file) {
  rmSync(file, { force: true });
}

export function isAlive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends SIGTERM, waits up to timeoutMs, then SIGKILL. Resolves true when the process is gone. */
export async function stopPid(pid, timeoutMs = 20000) {
  if (!isAlive(pid)) return true;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(200);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  await sleep(300);
  return !isAlive(pid);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves true when something accepts TCP connections on host:port. */
export function portOpen(port, host = '127.0.0.1', timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Polls check() until it resolves truthy or timeoutMs passes. */
export async function waitFor(check, timeoutMs, intervalMs = 500) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(intervalMs);
  }
}

/** True when this module is the process entry point (`node scripts/infra/x.js`). */
export function isMain(metaUrl) {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(metaUrl);
}
