// PostgreSQL for development and tests: `node scripts/infra/db.js up|down|status`
// (npm run db:up / db:down). Also usable from a vitest globalSetup:
//   import { dbUp, dbDown } from './scripts/infra/db.js';
//   const { databaseUrl, started } = await dbUp({ quiet: true }); ... if (started) await dbDown();
//
// Order of preference for `up`:
//   1. a Docker engine answers       -> docker compose -f docker-compose.postgres.yml up -d --wait
//   2. a server answers at DATABASE_URL -> use it (it is never stopped by `down`)
//   3. PostgreSQL server binaries     -> a local cluster under .local/postgres (trust auth)
// then the database named in DATABASE_URL is created when missing.
// `down` stops only what `up` started: the compose project, or the local cluster.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  commandExists,
  dockerAvailable,
  isAlive,
  isMain,
  localPath,
  portOpen,
  removeFile,
  repoRoot,
  say,
  sleep,
  waitFor,
} from './lib.js';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/kvary';
const COMPOSE_FILE = 'docker-compose.postgres.yml';
const INSTALL_HINT =
  'db:up needs Docker, a PostgreSQL server reachable at DATABASE_URL, or the PostgreSQL server binaries (apt-get install postgresql / brew install postgresql@16)';

class InfraError extends Error {}

function databaseUrlFromEnv() {
  return process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
}

/** The parts of DATABASE_URL the script needs. */
function parseUrl(databaseUrl) {
  let url;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new InfraError(`DATABASE_URL is not a valid URL: ${databaseUrl}`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new InfraError(`DATABASE_URL must start with postgres:// (got ${url.protocol}//)`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const port = Number(url.port || 5432);
  const user = decodeURIComponent(url.username) || 'postgres';
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || user;
  const maintenance = new URL(url.href);
  maintenance.pathname = '/postgres';
  return {
    url,
    host,
    port,
    user,
    database,
    where: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    maintenanceUrl: maintenance.href,
    isLocalHost: ['127.0.0.1', 'localhost', '::1'].includes(host),
  };
}

/** Redacts a password in a URL for printing. */
function redact(databaseUrl) {
  try {
    const u = new URL(databaseUrl);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return databaseUrl;
  }
}

async function loadPg() {
  try {
    const mod = await import('pg');
    return mod.default ?? mod;
  } catch {
    throw new InfraError("db: the 'pg' package is missing - run `npm install` in the repo root first");
  }
}

/** Connects, runs fn(client), disconnects. Throws the connection error as is. */
async function withClient(connectionString, fn) {
  const pg = await loadPg();
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** { ok: true, version } when the server's maintenance db accepts a query, else { ok: false, error }. */
async function probeServer(target) {
  try {
    const version = await withClient(target.maintenanceUrl, async (c) => {
      const r = await c.query('SHOW server_version');
      return r.rows[0].server_version;
    });
    return { ok: true, version };
  } catch (error) {
    return { ok: false, error };
  }
}

function quoteIdent(name) {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Creates the database named in DATABASE_URL when missing. Returns true when it created it. */
async function ensureDatabase(target) {
  return withClient(target.maintenanceUrl, async (c) => {
    const r = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [target.database]);
    if (r.rowCount > 0) return false;
    try {
      await c.query(`CREATE DATABASE ${quoteIdent(target.database)}`);
      return true;
    } catch (error) {
      // Another process created it at the same moment.
      if (error.code === '42P04' || error.code === '23505') return false;
      throw error;
    }
  });
}

// ---------------------------------------------------------------------------------------
// Docker

function composeRun(args, { env, capture = false } = {}) {
  const r = spawnSync('docker', ['compose', '-f', path.join(repoRoot, COMPOSE_FILE), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
  });
  return { status: r.status, stdout: r.stdout ? r.stdout.toString() : '' };
}

function composeRunning(env) {
  const r = composeRun(['ps', '--status', 'running', '-q'], { env, capture: true });
  return r.status === 0 && r.stdout.trim().length > 0;
}

// ---------------------------------------------------------------------------------------
// Local cluster (.local/postgres)

function clusterPaths() {
  const base = localPath('postgres');
  // Unix socket paths are limited to ~100 bytes; deep checkouts use a folder under /tmp.
  let socketDir = path.join(base, 'run');
  if (Buffer.byteLength(socketDir) > 80) {
    socketDir = path.join(os.tmpdir(), `kvary-pg-${createHash('sha1').update(base).digest('hex').slice(0, 10)}`);
  }
  return {
    base,
    dataDir: path.join(base, 'data'),
    socketDir,
    logFile: path.join(base, 'postgres.log'),
    marker: path.join(base, 'started-by-db-up.json'),
  };
}

function isExecutable(file) {
  return spawnSync('test', ['-x', file]).status === 0;
}

function hasServerBinaries(dir) {
  return ['initdb', 'pg_ctl', 'postgres'].every((b) => isExecutable(path.join(dir, b)));
}

/** The folder holding initdb/pg_ctl/postgres, or undefined. PG_BINDIR overrides. */
export function findPgBinDir() {
  const candidates = [];
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  if (commandExists('pg_config')) {
    const r = spawnSync('pg_config', ['--bindir'], { stdio: ['ignore', 'pipe', 'ignore'] });
    if (r.status === 0) candidates.push(r.stdout.toString().trim());
  }
  // Debian/Ubuntu: /usr/lib/postgresql/<major>/bin, newest first.
  try {
    const majors = readdirSync('/usr/lib/postgresql')
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a));
    for (const m of majors) candidates.push(`/usr/lib/postgresql/${m}/bin`);
  } catch {
    // not Debian-like
  }
  for (const name of ['initdb', 'pg_ctl']) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { stdio: ['ignore', 'pipe', 'ignore'] });
    if (r.status === 0) candidates.push(path.dirname(r.stdout.toString().trim()));
  }
  candidates.push('/usr/local/pgsql/bin', '/opt/homebrew/bin', '/usr/local/bin');
  return candidates.find((dir) => dir && hasServerBinaries(dir));
}

const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Runs a PostgreSQL server binary. initdb and postgres refuse to run as root, so as root
 * they run as the `postgres` OS user through runuser.
 */
function runPg(binDir, tool, args, { cwd } = {}) {
  const exe = path.join(binDir, tool);
  const [cmd, argv] = runningAsRoot ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
  const r = spawnSync(cmd, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  return {
    status: r.status,
    output: `${r.stdout ? r.stdout.toString() : ''}${r.stderr ? r.stderr.toString() : ''}`.trim(),
    error: r.error,
  };
}

function rootPreflight(paths) {
  if (!runningAsRoot) return;
  if (!commandExists('runuser')) {
    throw new InfraError('db: running as root, PostgreSQL refuses to run as root and `runuser` is missing to switch to the postgres user');
  }
  const id = spawnSync('id', ['-u', 'postgres'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const gid = spawnSync('id', ['-g', 'postgres'], { stdio: ['ignore', 'pipe', 'ignore'] });
  if (id.status !== 0) {
    throw new InfraError('db: running as root but there is no `postgres` OS user to run the local cluster as (useradd --system postgres)');
  }
  const uid = Number(id.stdout.toString().trim());
  const g = Number(gid.stdout.toString().trim());
  for (const dir of [paths.base, paths.socketDir, ...(existsSync(paths.dataDir) ? [paths.dataDir] : [])]) {
    chownSync(dir, uid, g);
  }
  if (existsSync(paths.logFile)) chownSync(paths.logFile, uid, g);
  const w = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-w', paths.base]);
  if (w.status !== 0) {
    throw new InfraError(`db: the postgres OS user cannot reach ${paths.base} (a parent folder is not traversable); make the repo folder readable or set DATABASE_URL to a running server`);
  }
}

function readMarker(paths) {
  if (!existsSync(paths.marker)) return undefined;
  try {
    return JSON.parse(readFileSync(paths.marker, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The pid and port of the postmaster running on .local/postgres/data, or undefined. */
function clusterRunning(paths) {
  const pidFile = path.join(paths.dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || !isAlive(pid)) return undefined;
  return { pid, port: Number(lines[3]) };
}

function logTail(file, lines = 15) {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

async function startLocalCluster(target, log) {
  const binDir = findPgBinDir();
  if (!binDir) throw new InfraError(INSTALL_HINT);
  const paths = clusterPaths();
  mkdirSync(paths.socketDir, { recursive: true });
  rootPreflight(paths);

  const running = clusterRunning(paths);
  if (running && running.port !== target.port) {
    throw new InfraError(
      `db: the local cluster in ${paths.dataDir} already runs on port ${running.port}, not ${target.port} - run \`npm run db:down\` first or point DATABASE_URL at port ${running.port}`,
    );
  }

  if (!existsSync(path.join(paths.dataDir, 'PG_VERSION'))) {
    log(`db: initialising a local PostgreSQL cluster in ${paths.dataDir} (${binDir})`);
    const r = runPg(
      binDir,
      'initdb',
      ['-D', paths.dataDir, '-U', target.user, '--auth=trust', '--encoding=UTF8', '--locale=C'],
      { cwd: paths.base },
    );
    if (r.status !== 0) {
      throw new InfraError(`db: initdb failed (exit ${r.status ?? r.error?.message}):\n${r.output}`);
    }
  }

  if (!running) {
    log(`db: starting the local cluster on ${target.where} (log: ${paths.logFile})`);
    const opts = `-p ${target.port} -k '${paths.socketDir}' -c listen_addresses='${target.host === 'localhost' ? 'localhost' : target.host}'`;
    const r = runPg(binDir, 'pg_ctl', ['-D', paths.dataDir, '-l', paths.logFile, '-w', '-t', '60', '-o', opts, 'start'], {
      cwd: paths.base,
    });
    if (r.status !== 0) {
      throw new InfraError(
        `db: pg_ctl start failed (exit ${r.status}); see ${paths.logFile}:\n${logTail(paths.logFile) || r.output}`,
      );
    }
  }
  const now = clusterRunning(paths);
  if (!running || !existsSync(paths.marker)) writeFileSync(
    paths.marker,
    `${JSON.stringify({ port: target.port, pid: now?.pid, binDir, dataDir: paths.dataDir, startedAt: new Date().toISOString() }, null, 2)}\n`,
  );
  const ready = await waitFor(async () => (await probeServer(target)).ok, 30000, 300);
  if (!ready) {
    throw new InfraError(`db: the local cluster started but does not accept connections at ${target.where}; see ${paths.logFile}`);
  }
  return { started: !running, paths, binDir };
}

// ---------------------------------------------------------------------------------------
// Commands

/**
 * Brings PostgreSQL up and creates the database named in DATABASE_URL.
 * Resolves { databaseUrl, started }; `started` is true when this call started a server
 * (so a test globalSetup knows to call dbDown() afterwards). Throws on failure.
 */
export async function dbUp({ quiet = false } = {}) {
  const log = quiet ? () => {} : say;
  const databaseUrl = databaseUrlFromEnv();
  const target = parseUrl(databaseUrl);
  let started = false;

  if (dockerAvailable()) {
    const env = { POSTGRES_PORT: String(target.port) };
    const wasRunning = composeRunning(env);
    if (!wasRunning && target.isLocalHost && (await portOpen(target.port, target.host))) {
      // Something else (e.g. a distribution's postgres) already owns the port.
      const probe = await probeServer(target);
      if (!probe.ok) {
        throw new InfraError(`db: port ${target.port} is taken by something that is not a usable PostgreSQL server (${probe.error.message}); free it or change DATABASE_URL`);
      }
      log(`db: using the PostgreSQL ${probe.version} server already running at ${target.where} (not started by db:up; the Docker container is not needed)`);
    } else {
      log(`db: docker compose -f ${COMPOSE_FILE} up -d --wait`);
      const r = composeRun(['up', '-d', '--wait'], { env });
      if (r.status !== 0) throw new InfraError(`db: docker compose -f ${COMPOSE_FILE} up -d --wait failed (exit ${r.status})`);
      started = !wasRunning;
      log(`db: ${started ? 'started' : 'already running:'} PostgreSQL container (logs: docker compose -f ${COMPOSE_FILE} logs postgres)`);
      if (!(await waitFor(async () => (await probeServer(target)).ok, 30000, 500))) {
        throw new InfraError(`db: the PostgreSQL container is up but ${target.where} does not accept connections; see docker compose -f ${COMPOSE_FILE} logs postgres`);
      }
    }
  } else {
    const paths = clusterPaths();
    const ours = clusterRunning(paths);
    const probe = await probeServer(target);
    if (probe.ok) {
      if (ours && ours.port === target.port && target.isLocalHost) {
        log(`db: the local cluster is already running at ${target.where} (pid ${ours.pid}, started earlier by db:up; log: ${paths.logFile})`);
      } else {
        log(`db: using the PostgreSQL ${probe.version} server already running at ${target.where}`);
      }
    } else if (!target.isLocalHost) {
      throw new InfraError(`db: the PostgreSQL server at ${target.where} does not answer (${probe.error.message}); db:up only starts servers on this machine`);
    } else if (await portOpen(target.port, target.host)) {
      throw new InfraError(`db: port ${target.port} at ${target.host} accepts connections but PostgreSQL refused them: ${probe.error.message}`);
    } else {
      const result = await startLocalCluster(target, log);
      started = result.started;
      log(`db: local PostgreSQL cluster ${started ? 'started' : 'already running'} at ${target.where} (data: ${result.paths.dataDir}, log: ${result.paths.logFile})`);
    }
  }

  const created = await ensureDatabase(target);
  log(`db: database "${target.database}" ${created ? 'created' : 'exists'} - DATABASE_URL=${redact(databaseUrl)}`);
  return { databaseUrl, started };
}

/** Stops what dbUp started (the compose project or the local cluster); leaves any other server alone. */
export async function dbDown({ quiet = false } = {}) {
  const log = quiet ? () => {} : say;
  const target = parseUrl(databaseUrlFromEnv());
  const paths = clusterPaths();
  let stoppedSomething = false;

  const running = clusterRunning(paths);
  const marker = readMarker(paths);
  if (running || marker) {
    if (running) {
      const binDir = (marker?.binDir && hasServerBinaries(marker.binDir) ? marker.binDir : undefined) ?? findPgBinDir();
      if (!binDir) throw new InfraError(`db: cannot find pg_ctl to stop the local cluster (pid ${running.pid}); stop it with kill ${running.pid}`);
      const r = runPg(binDir, 'pg_ctl', ['-D', paths.dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], { cwd: paths.base });
      if (r.status !== 0 && clusterRunning(paths)) {
        throw new InfraError(`db: pg_ctl stop failed (exit ${r.status}): ${r.output}`);
      }
      log(`db: stopped the local PostgreSQL cluster on port ${running.port} (pid ${running.pid}; data kept in ${paths.dataDir}, log: ${paths.logFile})`);
      stoppedSomething = true;
    }
    removeFile(paths.marker);
  }

  if (dockerAvailable()) {
    const env = { POSTGRES_PORT: String(target.port) };
    if (composeRunning(env)) {
      log(`db: docker compose -f ${COMPOSE_FILE} down (the data volume is kept)`);
      const r = composeRun(['down'], { env });
      if (r.status !== 0) throw new InfraError(`db: docker compose -f ${COMPOSE_FILE} down failed (exit ${r.status})`);
      stoppedSomething = true;
    }
  }

  if (!stoppedSomething) {
    const probe = await probeServer(target);
    if (probe.ok) {
      log(`db: the PostgreSQL server at ${target.where} was not started by db:up - leaving it alone`);
    } else {
      log('db: nothing to stop (no local cluster or container started by db:up is running)');
    }
  }
}

export async function dbStatus() {
  const databaseUrl = databaseUrlFromEnv();
  const target = parseUrl(databaseUrl);
  const paths = clusterPaths();
  say(`db: DATABASE_URL=${redact(databaseUrl)}`);
  if (dockerAvailable()) {
    const env = { POSTGRES_PORT: String(target.port) };
    say(`db: Docker: the ${COMPOSE_FILE} container is ${composeRunning(env) ? 'running' : 'not running'}`);
  } else {
    say('db: Docker: no engine answers (the local defaults are used)');
  }
  const running = clusterRunning(paths);
  if (running) {
    say(`db: local cluster: running on port ${running.port} (pid ${running.pid}, data: ${paths.dataDir}, log: ${paths.logFile})`);
  } else {
    say(`db: local cluster: not running${existsSync(paths.dataDir) ? ` (data: ${paths.dataDir})` : ''}`);
  }
  const probe = await probeServer(target);
  if (!probe.ok) {
    say(`db: server at ${target.where}: not reachable (${probe.error.message})`);
    return false;
  }
  const exists = await withClient(target.maintenanceUrl, async (c) =>
    (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [target.database])).rowCount > 0,
  );
  say(`db: server at ${target.where}: PostgreSQL ${probe.version}, database "${target.database}" ${exists ? 'exists' : 'is missing (run npm run db:up)'}`);
  return exists;
}

async function main() {
  const cmd = process.argv[2];
  try {
    if (cmd === 'up') await dbUp();
    else if (cmd === 'down') await dbDown();
    else if (cmd === 'status') process.exitCode = (await dbStatus()) ? 0 : 1;
    else {
      process.stderr.write('usage: node scripts/infra/db.js up|down|status\n');
      process.exitCode = 2;
    }
  } catch (error) {
    process.stderr.write(`${error instanceof InfraError ? error.message : `db ${cmd}: ${error.stack || error}`}\n`);
    process.exitCode = 1;
  }
  // Let pg sockets close; nothing else keeps the loop alive.
  await sleep(0);
}

if (isMain(import.meta.url)) await main();
