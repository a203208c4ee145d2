#!/usr/bin/env node
// Stops whatever listens on the given TCP ports: `node scripts/free-port.js PORT [PORT...]`.
// Plain Node, no dependencies (works before `npm install`).
//   Linux:   ss -ltnpH 'sport = :PORT' (then lsof, then /proc) to find the listening pids
//   macOS:   lsof -nP -t -iTCP:PORT -sTCP:LISTEN
//   Windows: netstat -ano -p tcp / tcpv6, then taskkill /PID n /F
// Each process gets SIGTERM, and SIGKILL if it is still alive 3 s later.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';

const GRACE_MS = 3000;
const isWindows = process.platform === 'win32';
const isLinux = process.platform === 'linux';

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', windowsHide: true });
  return { ok: !r.error, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function parsePort(arg) {
  if (!/^\d+$/.test(arg)) return undefined;
  const port = Number(arg);
  return port >= 1 && port <= 65535 ? port : undefined;
}

const uniq = (xs) => [...new Set(xs)].filter((pid) => pid > 0 && pid !== process.pid);

/** Linux via ss. Returns { pids, listening } (listening: ss saw a listener, pids maybe hidden). */
function pidsFromSs(port) {
  const r = run('ss', ['-ltnpH', `sport = :${port}`]);
  if (!r.ok || r.status !== 0) return undefined;
  const lines = r.stdout.split('\n').filter((l) => l.trim());
  const pids = [...r.stdout.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
  return { pids: uniq(pids), listening: lines.length > 0 };
}

/** macOS/Linux via lsof. */
function pidsFromLsof(port) {
  const r = run('lsof', ['-nP', '-t', `-iTCP:${port}`, '-sTCP:LISTEN']);
  if (!r.ok) return undefined; // lsof not installed
  // lsof exits 1 when nothing matches.
  const pids = r.stdout.split(/\s+/).filter(Boolean).map(Number);
  return { pids: uniq(pids), listening: pids.length > 0 };
}

/** Linux without ss/lsof: listening sockets from /proc/net/tcp{,6}, owners from /proc/PID/fd. */
function pidsFromProc(port) {
  const inodes = new Set();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const localPort = parseInt(cols[1].split(':').pop(), 16);
      if (localPort === port && cols[3] === '0A') inodes.add(cols[9]); // 0A = LISTEN
    }
  }
  if (inodes.size === 0) return { pids: [], listening: false };
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds;
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (m && inodes.has(m[1])) {
          pids.push(Number(entry));
          break;
        }
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return { pids: uniq(pids), listening: true };
}

/** Windows via netstat -ano (the state column is localised, so a listener is recognised by its :0 peer). */
function pidsFromNetstat(port) {
  const pids = [];
  for (const proto of ['tcp', 'tcpv6']) {
    const r = run('netstat', ['-ano', '-p', proto]);
    if (!r.ok) return undefined;
    for (const line of r.stdout.split(/\r?\n/)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 5 || !/^TCP/i.test(cols[0])) continue;
      const [, local, remote, state, pid] = cols;
      const localPort = Number(local.slice(local.lastIndexOf(':') + 1));
      const listening = /^LISTEN/i.test(state) || /:0$/.test(remote);
      if (localPort === port && listening) pids.push(Number(pid));
    }
  }
  return { pids: uniq(pids), listening: pids.length > 0 };
}

function findListeners(port) {
  if (isWindows) return pidsFromNetstat(port) ?? { pids: [], listening: false, noTool: 'netstat' };
  if (isLinux) {
    const ss = pidsFromSs(port);
    if (ss && (ss.pids.length > 0 || !ss.listening)) return ss;
    // ss missing, or it saw a listener without naming its process: try the others.
    const lsof = pidsFromLsof(port);
    if (lsof && lsof.pids.length > 0) return lsof;
    const proc = pidsFromProc(port);
    return { pids: proc.pids, listening: proc.listening || Boolean(ss?.listening) };
  }
  return pidsFromLsof(port) ?? { pids: [], listening: false, noTool: 'lsof' };
}

/** A short description of the process: its command line, paths relative to the current folder. */
function describe(pid) {
  let text = '';
  if (isLinux) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.length > 0) {
        if (path.isAbsolute(argv[0])) argv[0] = path.basename(argv[0]);
        text = argv.join(' ');
      }
    } catch {
      // gone or not ours to read
    }
  }
  if (!text && isWindows) {
    const r = run('tasklist', ['/FI', `PID eq ${pid}`, '/FO', 'CSV', '/NH']);
    const m = /^"([^"]+)"/.exec(r.stdout.trim());
    if (m) text = m[1];
  }
  if (!text && !isWindows) {
    text = run('ps', ['-o', 'command=', '-p', String(pid)]).stdout.trim();
  }
  const cwd = `${process.cwd()}${path.sep}`;
  text = text.split(cwd).join('').replace(/\s+/g, ' ').trim();
  if (text.length > 120) text = `${text.slice(0, 117)}...`;
  return text || 'unknown command';
}

function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return error.code === 'EPERM';
  }
  // A zombie (exited, not yet reaped by its parent) no longer holds the port.
  if (process.platform === 'linux') {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    } catch {
      return false;
    }
  }
  return true;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Stops the pids; returns { failures: pid -> reason, killed: pids that needed SIGKILL }.
 */
async function stop(pids) {
  const failures = new Map();
  const killed = new Set();
  if (isWindows) {
    for (const pid of pids) {
      const r = run('taskkill', ['/PID', String(pid), '/F']);
      if (r.status !== 0) failures.set(pid, (r.stderr || r.stdout).trim() || `taskkill exit ${r.status}`);
    }
    return { failures, killed };
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch (error) {
      if (error.code !== 'ESRCH') failures.set(pid, error.code === 'EPERM' ? 'permission denied (run it as that user or with sudo)' : error.message);
    }
  }
  const deadline = Date.now() + GRACE_MS;
  let remaining = pids.filter((pid) => !failures.has(pid) && alive(pid));
  while (remaining.length > 0 && Date.now() < deadline) {
    await sleep(100);
    remaining = remaining.filter(alive);
  }
  for (const pid of remaining) {
    killed.add(pid);
    try {
      process.kill(pid, 'SIGKILL');
    } catch (error) {
      if (error.code !== 'ESRCH') failures.set(pid, error.message);
    }
  }
  if (remaining.length > 0) await sleep(300);
  for (const pid of remaining) if (alive(pid) && !failures.has(pid)) failures.set(pid, 'still alive after SIGKILL');
  return { failures, killed };
}

async function freePort(port) {
  const found = findListeners(port);
  if (found.noTool) {
    console.error(`port ${port}: cannot look up listeners - '${found.noTool}' is not available`);
    return false;
  }
  if (found.pids.length === 0) {
    if (found.listening) {
      console.error(`port ${port}: something listens but its process is not visible to this user (run with sudo)`);
      return false;
    }
    console.log(`port ${port}: already free`);
    return true;
  }
  const names = new Map(found.pids.map((pid) => [pid, describe(pid)]));
  const { failures, killed } = await stop(found.pids);
  let ok = true;
  for (const pid of found.pids) {
    if (failures.has(pid)) {
      console.error(`port ${port}: could not stop pid ${pid} (${names.get(pid)}): ${failures.get(pid)}`);
      ok = false;
    } else {
      const how = killed.has(pid) ? ` - killed with SIGKILL, it ignored SIGTERM for ${GRACE_MS / 1000} s` : '';
      console.log(`port ${port}: stopped pid ${pid} (${names.get(pid)})${how}`);
    }
  }
  return ok;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length === 0) {
    console.error('usage: node scripts/free-port.js PORT [PORT...]');
    return 1;
  }
  const ports = [];
  for (const arg of args) {
    const port = parsePort(arg);
    if (port === undefined) {
      console.error(`free-port: '${arg}' is not a port number (1-65535)`);
      return 1;
    }
    ports.push(port);
  }
  let ok = true;
  for (const port of [...new Set(ports)]) {
    if (!(await freePort(port))) ok = false;
  }
  return ok ? 0 : 1;
}

process.exitCode = await main();
