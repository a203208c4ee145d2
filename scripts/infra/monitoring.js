// Prometheus (+ Grafana with Docker) for development: `node scripts/infra/monitoring.js up|down|status`
// (npm run monitoring:up / monitoring:down).
//
//   Docker engine answers -> docker compose -f docker-compose.monitoring.yml up -d --wait
//                            (Prometheus on 9090, Grafana on 3002, admin / admin)
//   otherwise             -> Debian's prometheus binary with prometheus/prometheus.local.yml on
//                            127.0.0.1:9090, data and log under .local/prometheus (no Grafana)
// `down` stops only what `up` started.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  dockerAvailable,
  isAlive,
  isMain,
  localPath,
  portOpen,
  readPid,
  removeFile,
  repoRoot,
  say,
  stopPid,
  waitFor,
  writePid,
} from './lib.js';

const COMPOSE_FILE = 'docker-compose.monitoring.yml';
const LOCAL_CONFIG = path.join(repoRoot, 'prometheus', 'prometheus.local.yml');
const DASHBOARD_FILE = 'grafana/dashboards/kes-outbox-overview.json';
const INSTALL_HINT = "monitoring:up needs Docker, or Debian's prometheus package (apt-get install prometheus)";

class InfraError extends Error {}

function promPort() {
  return Number(process.env.PROMETHEUS_PORT || 9090);
}

function grafanaPort() {
  return Number(process.env.GRAFANA_PORT || 3002);
}

function localPaths() {
  const base = localPath('prometheus');
  return {
    base,
    dataDir: path.join(base, 'data'),
    logFile: path.join(base, 'prometheus.log'),
    pidFile: path.join(base, 'prometheus.pid'),
  };
}

/** The prometheus binary: PROMETHEUS_BIN, /usr/bin/prometheus, or `prometheus` on PATH. */
function findPrometheus() {
  const candidates = [process.env.PROMETHEUS_BIN, '/usr/bin/prometheus'];
  const r = spawnSync('sh', ['-c', 'command -v prometheus'], { stdio: ['ignore', 'pipe', 'ignore'] });
  if (r.status === 0) candidates.push(r.stdout.toString().trim());
  return candidates.find((c) => c && spawnSync('test', ['-x', c]).status === 0);
}

function composeRun(args, { capture = false } = {}) {
  const r = spawnSync('docker', ['compose', '-f', path.join(repoRoot, COMPOSE_FILE), ...args], {
    cwd: repoRoot,
    stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
  });
  return { status: r.status, stdout: r.stdout ? r.stdout.toString() : '' };
}

function composeRunning() {
  const r = composeRun(['ps', '--status', 'running', '-q'], { capture: true });
  return r.status === 0 && r.stdout.trim().length > 0;
}

async function httpOk(url, timeoutMs = 2000) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok;
  } catch {
    return false;
  }
}

async function httpJson(url, timeoutMs = 2000) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? await res.json() : undefined;
  } catch {
    return undefined;
  }
}

/** Our pid when the pid file names a live prometheus process, else undefined. */
function ourPid(paths) {
  const pid = readPid(paths.pidFile);
  if (!pid || !isAlive(pid)) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes('prometheus')) return undefined; // pid reused by something else
  } catch {
    // no /proc (macOS): trust the pid file
  }
  return pid;
}

function logTail(file, lines = 15) {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

function grafanaHint(log) {
  log(`monitoring: Grafana needs Docker; without it, import ${DASHBOARD_FILE} by hand in any Grafana (Dashboards → New → Import) with a Prometheus datasource pointing at http://127.0.0.1:${promPort()}`);
}

/** Starts Prometheus (+ Grafana with Docker). Resolves { started, mode, prometheusUrl }. Throws on failure. */
export async function monitoringUp({ quiet = false } = {}) {
  const log = quiet ? () => {} : say;
  const port = promPort();
  const prometheusUrl = `http://127.0.0.1:${port}`;

  if (dockerAvailable()) {
    const wasRunning = composeRunning();
    log(`monitoring: docker compose -f ${COMPOSE_FILE} up -d --wait`);
    const r = composeRun(['up', '-d', '--wait']);
    if (r.status !== 0) throw new InfraError(`monitoring: docker compose -f ${COMPOSE_FILE} up -d --wait failed (exit ${r.status})`);
    log(`monitoring: Prometheus ${prometheusUrl}, Grafana http://127.0.0.1:${grafanaPort()} (admin / admin), dashboard "KES Outbox Overview"`);
    log(`monitoring: logs: docker compose -f ${COMPOSE_FILE} logs prometheus grafana`);
    return { started: !wasRunning, mode: 'docker', prometheusUrl };
  }

  const bin = findPrometheus();
  if (!bin) throw new InfraError(INSTALL_HINT);
  const paths = localPaths();

  const existing = ourPid(paths);
  if (existing) {
    if (!(await waitFor(() => httpOk(`${prometheusUrl}/-/ready`), 30000, 500))) {
      throw new InfraError(`monitoring: Prometheus (pid ${existing}) is running but ${prometheusUrl}/-/ready does not answer; see ${paths.logFile}`);
    }
    log(`monitoring: Prometheus already running at ${prometheusUrl} (pid ${existing}, log: ${paths.logFile})`);
    grafanaHint(log);
    return { started: false, mode: 'local', prometheusUrl };
  }
  removeFile(paths.pidFile);

  if (await portOpen(port)) {
    // Something else owns the port: reuse it only if it is a Prometheus running our config.
    const flags = await httpJson(`${prometheusUrl}/api/v1/status/flags`);
    const configFile = flags?.data?.['config.file'];
    if (configFile && path.resolve(repoRoot, configFile) === LOCAL_CONFIG) {
      log(`monitoring: a Prometheus with ${path.relative(repoRoot, LOCAL_CONFIG)} already answers at ${prometheusUrl} (not started by monitoring:up, so monitoring:down leaves it alone)`);
      grafanaHint(log);
      return { started: false, mode: 'local', prometheusUrl };
    }
    const what = configFile ? `a Prometheus using ${configFile} (e.g. the distribution's service: systemctl stop prometheus)` : 'another process';
    throw new InfraError(`monitoring: port ${port} is taken by ${what}; stop it (node scripts/free-port.js ${port}) and run monitoring:up again`);
  }

  const args = [
    `--config.file=${LOCAL_CONFIG}`,
    `--storage.tsdb.path=${paths.dataDir}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--web.enable-lifecycle',
  ];
  const out = openSync(paths.logFile, 'a');
  const child = spawn(bin, args, { cwd: repoRoot, detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  child.once('error', () => {
    exited = true;
  });
  if (!child.pid) throw new InfraError(`monitoring: could not start ${bin}`);
  writePid(paths.pidFile, child.pid);
  log(`monitoring: starting ${bin} (pid ${child.pid}) with ${path.relative(repoRoot, LOCAL_CONFIG)} on ${prometheusUrl}`);

  const ready = await waitFor(async () => exited || (await httpOk(`${prometheusUrl}/-/ready`)), 30000, 300);
  if (exited || !ready) {
    if (!exited) await stopPid(child.pid, 5000);
    removeFile(paths.pidFile);
    throw new InfraError(
      `monitoring: Prometheus ${exited ? 'exited' : 'did not become ready within 30 s'}; see ${paths.logFile}:\n${logTail(paths.logFile)}`,
    );
  }
  child.unref();
  log(`monitoring: Prometheus ready at ${prometheusUrl} (data: ${paths.dataDir}, log: ${paths.logFile})`);
  grafanaHint(log);
  return { started: true, mode: 'local', prometheusUrl };
}

/** Stops what monitoringUp started; leaves anything else alone. */
export async function monitoringDown({ quiet = false } = {}) {
  const log = quiet ? () => {} : say;
  const paths = localPaths();
  let stopped = false;

  const pid = ourPid(paths);
  if (pid) {
    if (!(await stopPid(pid, 20000))) throw new InfraError(`monitoring: Prometheus (pid ${pid}) did not stop`);
    log(`monitoring: stopped the local Prometheus (pid ${pid}; data kept in ${paths.dataDir}, log: ${paths.logFile})`);
    stopped = true;
  }
  removeFile(paths.pidFile);

  if (dockerAvailable() && composeRunning()) {
    log(`monitoring: docker compose -f ${COMPOSE_FILE} down (data volumes are kept)`);
    const r = composeRun(['down']);
    if (r.status !== 0) throw new InfraError(`monitoring: docker compose -f ${COMPOSE_FILE} down failed (exit ${r.status})`);
    stopped = true;
  }

  if (!stopped) {
    if (await portOpen(promPort())) {
      log(`monitoring: something answers on port ${promPort()} but was not started by monitoring:up - leaving it alone`);
    } else {
      log('monitoring: nothing to stop (no Prometheus started by monitoring:up is running)');
    }
  }
}

export async function monitoringStatus() {
  const port = promPort();
  const prometheusUrl = `http://127.0.0.1:${port}`;
  const paths = localPaths();
  let ok = false;
  if (dockerAvailable()) {
    const running = composeRunning();
    say(`monitoring: Docker: the ${COMPOSE_FILE} containers are ${running ? 'running' : 'not running'}`);
    if (running) composeRun(['ps']);
  } else {
    say(`monitoring: Docker: no engine answers (local Prometheus: ${findPrometheus() ?? 'not installed'})`);
  }
  const pid = ourPid(paths);
  say(`monitoring: local Prometheus: ${pid ? `running (pid ${pid}, log: ${paths.logFile})` : 'not running'}`);
  if (await httpOk(`${prometheusUrl}/-/ready`)) {
    ok = true;
    const targets = await httpJson(`${prometheusUrl}/api/v1/targets?state=active`);
    const list = (targets?.data?.activeTargets ?? [])
      .map((t) => `${t.labels?.job}=${t.health}`)
      .sort()
      .join(', ');
    say(`monitoring: ${prometheusUrl} ready${list ? `; targets: ${list}` : ''}`);
  } else {
    say(`monitoring: ${prometheusUrl} not answering`);
  }
  return ok;
}

async function main() {
  const cmd = process.argv[2];
  try {
    if (cmd === 'up') await monitoringUp();
    else if (cmd === 'down') await monitoringDown();
    else if (cmd === 'status') process.exitCode = (await monitoringStatus()) ? 0 : 1;
    else {
      process.stderr.write('usage: node scripts/infra/monitoring.js up|down|status\n');
      process.exitCode = 2;
    }
  } catch (error) {
    process.stderr.write(`${error instanceof InfraError ? error.message : `monitoring ${cmd}: ${error.stack || error}`}\n`);
    process.exitCode = 1;
  }
}

if (isMain(import.meta.url)) {
  await main();
  // The detached Prometheus must not keep this script alive.
  process.exit(process.exitCode ?? 0);
}
