// Local Kafka for development and tests: `node scripts/infra/kafka.js up|down|status`.
//
// With a Docker engine: docker-compose.kafka.yml (apache/kafka:4.1.1, KRaft, single node).
// Without one: the same broker from Maven Central jars, run by the machine's Java 17+
// (jars via scripts/infra/kafka/pom.xml, state in .local/kafka/). Either way the KES topics
// are created afterwards (auto topic creation is off).
//
// kafkaUp()/kafkaDown() are exported for a vitest globalSetup; they throw instead of exiting.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import {
  commandExists,
  compose,
  dockerAvailable,
  fail,
  isAlive,
  isMain,
  localPath,
  portOpen,
  readPid,
  removeFile,
  repoRoot,
  say,
  sleep,
  stopPid,
  waitFor,
  writePid,
} from './lib.js';

export const KAFKA_VERSION = '4.1.1';
const HOST = '127.0.0.1';
const PORT = Number(process.env.KAFKA_PORT || 9092);
const CONTROLLER_PORT = Number(process.env.KAFKA_CONTROLLER_PORT || 9093);
const BROKERS = `${HOST}:${PORT}`;
const COMPOSE_FILE = 'docker-compose.kafka.yml';
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

/** Topics the KES services expect; created idempotently with replication factor 1. */
export const KES_TOPICS = [
  { topic: 'kes.tenders.v1', numPartitions: 3 },
  { topic: 'kes.tenders.v1.dlq', numPartitions: 3 },
  { topic: 'kes.smoke.v1', numPartitions: 1 },
];

const POM = path.join(repoRoot, 'scripts', 'infra', 'kafka', 'pom.xml');
// KAFKA_LOCAL_DIR moves a broker's state (data, log, pid) elsewhere, so a test can run a
// second, private broker on other ports; the downloaded jars are always shared.
const kafkaDir = () => (process.env.KAFKA_LOCAL_DIR ? ensureDir(path.resolve(process.env.KAFKA_LOCAL_DIR)) : localPath('kafka'));
const files = () => {
  const dir = kafkaDir();
  const shared = localPath('kafka');
  return {
    dir,
    libs: path.join(shared, 'libs'),
    libsMarker: path.join(shared, 'libs.ok'),
    data: path.join(dir, 'data'),
    clusterId: path.join(dir, 'cluster-id'),
    serverProps: path.join(dir, 'server.properties'),
    log4j: path.join(dir, 'log4j2.properties'),
    log: path.join(dir, 'kafka.log'),
    pid: path.join(dir, 'kafka.pid'),
  };
};

function ensureDir(dir) {
  mkdirSync(dir, { recursive: true });
  return dir;
}

const INSTALL_HINT =
  'kafka:up needs Docker, or Java 17+ and Maven 3.8+ (apt-get install openjdk-17-jre-headless maven)';

// ---------------------------------------------------------------------------------------
// kafkajs helpers (loaded lazily so `down`/`status` work without node_modules)

let kafkajsModule;
async function kafkajs() {
  kafkajsModule ??= (await import('kafkajs')).default;
  return kafkajsModule;
}

async function client({ connectionTimeout = 3000, retries = 0 } = {}) {
  const { Kafka, logLevel } = await kafkajs();
  return new Kafka({
    clientId: 'kes-infra',
    brokers: [BROKERS],
    connectionTimeout,
    requestTimeout: 10_000,
    logLevel: logLevel.NOTHING,
    retry: { retries, initialRetryTime: 200, maxRetryTime: 2000 },
  });
}

async function withAdmin(fn, options) {
  const admin = (await client(options)).admin();
  try {
    await admin.connect();
    return await fn(admin);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** True when an Admin client can list topics and the cluster reports at least one broker. */
async function brokerReady() {
  if (!(await portOpen(PORT, HOST))) return false;
  try {
    return await withAdmin(async (admin) => {
      await admin.listTopics();
      const cluster = await admin.describeCluster();
      return cluster.brokers.length > 0;
    });
  } catch {
    return false;
  }
}

/** Creates the missing KES topics; returns the names it created. */
async function ensureTopics() {
  return withAdmin(
    async (admin) => {
      const existing = new Set(await admin.listTopics());
      const missing = KES_TOPICS.filter((t) => !existing.has(t.topic));
      if (missing.length > 0) {
        try {
          await admin.createTopics({
            topics: missing.map((t) => ({ ...t, replicationFactor: 1 })),
            waitForLeaders: true,
            timeout: 15_000,
          });
        } catch (err) {
          // A concurrent `up` may have created them first.
          const errors = err?.errors ?? [err];
          if (!errors.every((e) => e?.type === 'TOPIC_ALREADY_EXISTS')) throw err;
        }
      }
      const present = KES_TOPICS.filter((t) => existing.has(t.topic)).map((t) => t.topic);
      if (present.length > 0) {
        const { topics } = await admin.fetchTopicMetadata({ topics: present });
        for (const t of topics) {
          const want = KES_TOPICS.find((k) => k.topic === t.name)?.numPartitions ?? 1;
          if (t.partitions.length !== want) {
            process.stderr.write(
              `warning: topic ${t.name} has ${t.partitions.length} partitions, expected ${want}\n`,
            );
          }
        }
      }
      return missing.map((t) => t.topic);
    },
    { connectionTimeout: 5000, retries: 5 },
  );
}

/**
 * The broker creates __consumer_offsets and its producer-id block lazily, on first use; do it
 * now so the first consumer group / idempotent producer of a test run does not sit through
 * "group coordinator is not available" / "coordinator is loading" retries.
 */
async function warmUpCoordinators() {
  const kafka = await client({ connectionTimeout: 5000, retries: 10 });
  const admin = kafka.admin();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  try {
    await admin.connect();
    await admin.fetchOffsets({ groupId: 'kes-infra-warmup', topics: [KES_TOPICS[0].topic] });
    await producer.connect(); // InitProducerId
  } catch (err) {
    process.stderr.write(`warning: kafka coordinator warm-up failed: ${err?.message ?? err}\n`);
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

async function prepareBroker() {
  const created = await ensureTopics();
  await warmUpCoordinators();
  return created;
}

// ---------------------------------------------------------------------------------------
// Embedded broker (Maven Central jars + local Java)

function javaMajor() {
  if (!commandExists('java')) return 0;
  const r = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${r.stderr}${r.stdout}`);
  if (!m) return 0;
  const major = Number(m[1]);
  return major === 1 ? Number(m[2]) : major;
}

function pomHash() {
  return createHash('sha256').update(readFileSync(POM)).digest('hex').slice(0, 16);
}

function libsCached(f) {
  if (!existsSync(f.libsMarker) || !existsSync(f.libs)) return false;
  if (readFileSync(f.libsMarker, 'utf8').trim() !== pomHash()) return false;
  return readdirSync(f.libs).some((name) => name === `kafka_2.13-${KAFKA_VERSION}.jar`);
}

function downloadLibs(f, log) {
  rmSync(f.libs, { recursive: true, force: true });
  removeFile(f.libsMarker);
  log(`kafka: downloading Apache Kafka ${KAFKA_VERSION} jars from Maven Central (first run only)…`);
  const started = Date.now();
  const r = spawnSync(
    'mvn',
    [
      '-B',
      '-q',
      '-f',
      POM,
      'org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${f.libs}`,
    ],
    { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n');
    throw new Error(`kafka: Maven download of the Kafka jars failed (exit ${r.status})\n${out}`);
  }
  if (!existsSync(path.join(f.libs, `kafka_2.13-${KAFKA_VERSION}.jar`))) {
    throw new Error(`kafka: Maven finished but kafka_2.13-${KAFKA_VERSION}.jar is not in ${f.libs}`);
  }
  writeFileSync(f.libsMarker, `${pomHash()}\n`);
  log(`kafka: jars ready in ${path.relative(repoRoot, f.libs)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

function writeConfig(f) {
  const props = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    'controller.quorum.voters': `1@${HOST}:${CONTROLLER_PORT}`,
    listeners: `PLAINTEXT://${HOST}:${PORT},CONTROLLER://${HOST}:${CONTROLLER_PORT}`,
    'advertised.listeners': `PLAINTEXT://${HOST}:${PORT}`,
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': f.data,
    'num.partitions': '1',
    'default.replication.factor': '1',
    'min.insync.replicas': '1',
    'auto.create.topics.enable': 'false',
    'offsets.topic.replication.factor': '1',
    'offsets.topic.num.partitions': '1',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'transaction.state.log.num.partitions': '1',
    'share.coordinator.state.topic.replication.factor': '1',
    'share.coordinator.state.topic.min.isr': '1',
    'share.coordinator.state.topic.num.partitions': '1',
    'group.initial.rebalance.delay.ms': '0',
    'log.cleaner.dedupe.buffer.size': '2097152',
  };
  writeFileSync(
    f.serverProps,
    `# Generated by scripts/infra/kafka.js — edits are overwritten on every \`up\`.\n${Object.entries(
      props,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
  );
  writeFileSync(
    f.log4j,
    [
      '# Generated by scripts/infra/kafka.js',
      'status = warn',
      'shutdownHook = disable', // let Kafka's own shutdown hook log until the end
      'name = kes-embedded-kafka',
      'appender.stdout.type = Console',
      'appender.stdout.name = STDOUT',
      'appender.stdout.layout.type = PatternLayout',
      'appender.stdout.layout.pattern = [%d] %p %m (%c)%n',
      'rootLogger.level = INFO',
      'rootLogger.appenderRef.stdout.ref = STDOUT',
      'logger.request.name = kafka.request.logger',
      'logger.request.level = WARN',
      'logger.statechange.name = state.change.logger',
      'logger.statechange.level = WARN',
      'logger.authorizer.name = kafka.authorizer.logger',
      'logger.authorizer.level = WARN',
      '',
    ].join('\n'),
  );
}

function javaBase(f) {
  return [
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${f.log4j}`,
    '-cp',
    `${f.libs}${path.sep}*`, // passed unexpanded: Java expands the wildcard itself
  ];
}

function storageTool(f, args) {
  const r = spawnSync('java', [...javaBase(f), 'kafka.tools.StorageTool', ...args], {
    cwd: f.dir,
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    throw new Error(
      `kafka: StorageTool ${args[0]} failed (exit ${r.status})\n${`${r.stdout}${r.stderr}`.trim()}`,
    );
  }
  return r.stdout;
}

function clusterId(f) {
  if (existsSync(f.clusterId)) return readFileSync(f.clusterId, 'utf8').trim();
  // Keep an already formatted data dir usable when only the id file went missing.
  const meta = path.join(f.data, 'meta.properties');
  let id = existsSync(meta) ? /^cluster\.id=(.+)$/m.exec(readFileSync(meta, 'utf8'))?.[1]?.trim() : undefined;
  if (!id) {
    id = storageTool(f, ['random-uuid'])
      .split('\n')
      .map((l) => l.trim())
      .find((l) => /^[A-Za-z0-9_-]{22}$/.test(l));
    if (!id) throw new Error('kafka: StorageTool random-uuid printed no cluster id');
  }
  writeFileSync(f.clusterId, `${id}\n`);
  return id;
}

function tail(file, lines = 20) {
  if (!existsSync(file)) return '(no log file)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** The pid file's process, when it is alive and is our broker (guards against pid reuse). */
function ourBrokerPid(f) {
  const pid = readPid(f.pid);
  if (!isAlive(pid)) return undefined;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmd.includes('kafka.Kafka')) return undefined;
  } catch {
    // no /proc (macOS): trust the pid file
  }
  return pid;
}

async function startEmbedded(f, log) {
  const java = javaMajor();
  const haveLibs = libsCached(f);
  if (java < 17 || (!haveLibs && !commandExists('mvn'))) throw new Error(INSTALL_HINT);
  if (!haveLibs) downloadLibs(f, log);

  writeConfig(f);
  const id = clusterId(f);
  storageTool(f, ['format', '-t', id, '-c', f.serverProps, '--ignore-formatted']);

  if (existsSync(f.log)) renameSync(f.log, `${f.log}.1`);
  const out = openSync(f.log, 'a');
  const heap = (process.env.KAFKA_HEAP_OPTS || '-Xms256m -Xmx512m').split(/\s+/).filter(Boolean);
  const child = spawn(
    'java',
    [...heap, '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', ...javaBase(f), 'kafka.Kafka', f.serverProps],
    { cwd: f.dir, detached: true, stdio: ['ignore', out, out] },
  );
  closeSync(out);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  child.once('error', () => {
    exited = true;
  });
  child.unref();
  writePid(f.pid, child.pid);

  const started = Date.now();
  const ready = await waitFor(async () => exited || (await brokerReady()), READY_TIMEOUT_MS, 500);
  if (!ready || exited) {
    const why = exited ? 'exited during startup' : `not ready after ${READY_TIMEOUT_MS / 1000} s`;
    if (!exited) await stopPid(child.pid, 10_000);
    removeFile(f.pid);
    throw new Error(
      `kafka: broker ${why}; last lines of ${path.relative(repoRoot, f.log)}:\n${tail(f.log)}`,
    );
  }
  return { pid: child.pid, seconds: (Date.now() - started) / 1000 };
}

/**
 * Serialises concurrent `up`s (e.g. `npm run kafka:up` racing a vitest globalSetup): without
 * it both would start a JVM, the loser would fail on the data-dir lock and drop the pid file.
 */
async function withUpLock(f, fn) {
  const lock = path.join(f.dir, 'up.lock');
  const deadline = Date.now() + 2 * READY_TIMEOUT_MS;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if (err?.code !== 'EEXIST') throw err;
      const holder = readPid(lock);
      let young = false;
      try {
        young = Date.now() - statSync(lock).mtimeMs < 5000;
      } catch {
        continue; // vanished meanwhile
      }
      if (!isAlive(holder) && !(holder === undefined && young)) {
        removeFile(lock); // left by a killed `up`
        continue;
      }
      if (Date.now() > deadline) throw new Error(`kafka: another kafka:up (pid ${holder}) holds ${lock}`);
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    removeFile(lock);
  }
}

// ---------------------------------------------------------------------------------------
// Public API

/** Starts (or reuses) the local broker and ensures the KES topics exist. */
export async function kafkaUp({ quiet = false } = {}) {
  const log = quiet ? () => {} : say;
  const topicsNote = (created) =>
    created.length > 0 ? `created topics ${created.join(', ')}` : 'topics present';

  if (dockerAvailable()) {
    const wasUp = await portOpen(PORT, HOST);
    compose(COMPOSE_FILE, ['up', '-d', '--wait']);
    if (!(await waitFor(brokerReady, READY_TIMEOUT_MS))) {
      throw new Error(`kafka: container is up but ${BROKERS} is not ready (docker compose -f ${COMPOSE_FILE} logs kafka)`);
    }
    const created = await prepareBroker();
    log(`kafka: Docker broker on ${BROKERS}; ${topicsNote(created)} (logs: docker compose -f ${COMPOSE_FILE} logs kafka)`);
    return { brokers: BROKERS, started: !wasUp };
  }

  const f = files();
  return withUpLock(f, () => upEmbedded(f, log, topicsNote));
}

async function upEmbedded(f, log, topicsNote) {
  const relLog = path.relative(repoRoot, f.log);
  const pid = ourBrokerPid(f);
  if (pid) {
    if (!(await waitFor(brokerReady, READY_TIMEOUT_MS))) {
      throw new Error(`kafka: pid ${pid} is running but ${BROKERS} is not ready; last lines of ${relLog}:\n${tail(f.log)}`);
    }
    const created = await prepareBroker();
    log(`kafka: already running (pid ${pid}) on ${BROKERS}; ${topicsNote(created)}; log: ${relLog}`);
    return { brokers: BROKERS, started: false };
  }
  if (readPid(f.pid)) removeFile(f.pid); // stale pid file

  if (await portOpen(PORT, HOST)) {
    if (!(await waitFor(brokerReady, 10_000))) {
      throw new Error(`kafka: port ${PORT} is taken by something that is not a Kafka broker (set KAFKA_PORT)`);
    }
    const created = await prepareBroker();
    log(`kafka: external broker already on ${BROKERS} (not started by this script); ${topicsNote(created)}`);
    return { brokers: BROKERS, started: false };
  }
  if (await portOpen(CONTROLLER_PORT, HOST)) {
    throw new Error(`kafka: controller port ${CONTROLLER_PORT} is taken (set KAFKA_CONTROLLER_PORT)`);
  }

  const { pid: newPid, seconds } = await startEmbedded(f, log);
  const created = await prepareBroker();
  log(
    `kafka: started Kafka ${KAFKA_VERSION} (pid ${newPid}) on ${BROKERS} in ${seconds.toFixed(1)} s; ${topicsNote(created)}`,
  );
  log(`kafka: log ${relLog}, data ${path.relative(repoRoot, f.data)}; stop with npm run kafka:down`);
  return { brokers: BROKERS, started: true };
}

/** Stops what kafkaUp started. purge also deletes the data dir and cluster id (keeps jars). */
export async function kafkaDown({ purge = false, quiet = false } = {}) {
  const log = quiet ? () => {} : say;
  if (dockerAvailable()) {
    compose(COMPOSE_FILE, purge ? ['down', '-v'] : ['down']);
    log(`kafka: Docker broker stopped${purge ? ' and its volume removed' : ''}`);
    return { stopped: true };
  }

  const f = files();
  const pid = ourBrokerPid(f);
  let stopped = false;
  if (pid) {
    const gone = await stopPid(pid, STOP_TIMEOUT_MS);
    if (!gone) throw new Error(`kafka: could not stop pid ${pid}`);
    stopped = true;
    log(`kafka: stopped broker (pid ${pid})`);
  } else {
    log('kafka: not running');
  }
  removeFile(f.pid);
  if (purge) {
    rmSync(f.data, { recursive: true, force: true });
    removeFile(f.clusterId);
    log(`kafka: purged ${path.relative(repoRoot, f.data)} and cluster-id (jars kept)`);
  }
  return { stopped };
}

/** One line describing the broker; true when it answers. */
export async function kafkaStatus() {
  const ready = await brokerReady();
  if (dockerAvailable()) {
    say(`kafka: Docker mode; ${BROKERS} ${ready ? 'ready' : 'not answering'}`);
    return ready;
  }
  const f = files();
  const pid = ourBrokerPid(f);
  if (pid) say(`kafka: running (pid ${pid}) on ${BROKERS}, ${ready ? 'ready' : 'not ready'}; log: ${path.relative(repoRoot, f.log)}`);
  else if (ready) say(`kafka: external broker on ${BROKERS} (not started by this script)`);
  else say('kafka: not running');
  return ready;
}

// ---------------------------------------------------------------------------------------
// CLI

async function main(argv) {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'up':
      await kafkaUp();
      return 0;
    case 'down':
      await kafkaDown({ purge: rest.includes('--purge') });
      return 0;
    case 'status':
      return (await kafkaStatus()) ? 0 : 1;
    default:
      process.stderr.write('usage: node scripts/infra/kafka.js up | down [--purge] | status\n');
      return 2;
  }
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => fail(err instanceof Error ? err.message : String(err)),
  );
}
