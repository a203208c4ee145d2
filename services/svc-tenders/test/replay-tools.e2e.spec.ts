// The two operator tools run as real processes against real Postgres and Kafka: dry runs change
// nothing, executes do exactly what the dry run listed (once), audits, and every bad argument.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOutboxEvent } from '@kvary/outbox/writer';
import { withTransaction } from '@kvary/platform/postgres';
import { collectMessages, testBrokers, testKafka } from '@kvary/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@kvary/testing/postgres';
import {
  REPO_ROOT,
  freshTopics,
  metricValue,
  produce,
  runTool,
  runToolSync,
  startConsumer,
  tenderLifecycle,
  waitUntil,
  type RunningConsumer,
  type TestEvent,
  type Topics,
} from './workspace-helpers.js';

let db: TestDatabase;
let kafka: Kafka;
const consumers: RunningConsumer[] = [];

beforeAll(async () => {
  db = await createTestDatabase('replaytools');
  kafka = testKafka('replay-tools-test');
});
afterAll(async () => {
  for (const c of consumers) await c.stop();
  await db.close();
});

async function highWaterMarks(topic: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition).map((p) => p.high);
  } finally {
    await admin.disconnect();
  }
}

async function committedOffsets(group: string, topic: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return (t?.partitions ?? []).sort((a, b) => a.partition - b.partition).map((p) => p.offset);
  } finally {
    await admin.disconnect();
  }
}

describe('replay:kes-dlq', () => {
  let topics: Topics;
  let consumer: RunningConsumer;
  let events: TestEvent[];
  let env: Record<string, string>;
  const failing = new Set<string>();

  beforeAll(async () => {
    topics = await freshTopics(kafka, 'replay');
    const group = `kes-dlq-replay-test-${randomUUID().slice(0, 8)}`;
    env = { DATABASE_URL: db.url, KAFKA_BROKERS: testBrokers().join(','), KES_DLQ_TOPIC: topics.dlq, KES_DLQ_REPLAY_GROUP: group, USER: 'tester' };
    // Four tenders whose projection "fails" until the fault is lifted: all four end in the DLQ.
    events = Array.from({ length: 4 }, (_, i) => tenderLifecycle({ org: 'org-replay', title: `Replay ${i}` }).created());
    for (const e of events) failing.add(e.eventId);
    consumer = await startConsumer(db.pool, kafka, topics, { maxRetries: 1, retryBaseMs: 10 });
    consumers.push(consumer);
    consumer.faults.beforeApply = (event) => {
      if (failing.has(event.eventId)) throw new Error('projection unavailable');
    };
    await produce(kafka, topics.topic, events);
    await waitUntil(async () => (await metricValue(consumer.registry, 'kes_consumer_dlq_total')) === 4, 30000, 'four dead letters');
  });

  it('dry run lists the DLQ messages and changes nothing', async () => {
    const before = await highWaterMarks(topics.topic);
    const r = await runTool('replay-kes-dlq', ['--max-messages', '10'], env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, mode: 'dry-run', listed: 4, replayed: 0, wouldReplay: 4, skipped: 0 });
    expect(r.stdout).toContain('Nothing changed');
    expect(r.json.items!.map((i) => i.eventId).sort()).toEqual(events.map((e) => e.eventId).sort());
    expect(r.json.items![0]).toMatchObject({ reason: 'retries_exhausted', attempts: 2, error: 'projection unavailable', originalTopic: topics.topic });
    expect(await committedOffsets(env.KES_DLQ_REPLAY_GROUP!, topics.dlq)).toEqual(['-1', '-1', '-1']);
    expect(await highWaterMarks(topics.topic)).toEqual(before);
    expect((await db.pool.query('SELECT 1 FROM kes_dlq_replays')).rowCount).toBe(0);
  });

  it('--max-messages bounds what is listed; --event-type filters', async () => {
    const two = await runTool('replay-kes-dlq', ['--max-messages', '2', '--from-beginning'], env);
    expect(two.json).toMatchObject({ listed: 2, wouldReplay: 2 });
    const other = await runTool('replay-kes-dlq', ['--event-type', 'kvary.tenders.tender.closed.v1'], env);
    expect(other.json).toMatchObject({ listed: 4, wouldReplay: 0, skipped: 4 });
  });

  it('execute replays exactly what the dry run listed, once; the consumer applies each once; a second execute replays nothing', async () => {
    const dry = await runTool('replay-kes-dlq', [], env);
    failing.clear();
    const before = await highWaterMarks(topics.topic);
    const run = await runTool('replay-kes-dlq', ['--execute', '--max-messages', '50', '--reason', 'fixed the projection'], env);
    expect(run.status, run.stderr).toBe(0);
    expect(run.json).toMatchObject({ ok: true, mode: 'execute', listed: 4, replayed: 4, skipped: 0 });
    const position = (i: Record<string, unknown>) => `${String(i.partition)}@${String(i.offset)}`;
    expect(run.json.items!.map(position)).toEqual(dry.json.items!.map(position));

    // Re-published with key, value and original headers, no kes-dlq-* headers, replay count 1.
    const after = await highWaterMarks(topics.topic);
    expect(after.reduce((s, h) => s + Number(h), 0) - before.reduce((s, h) => s + Number(h), 0)).toBe(4);
    const all = await collectMessages(kafka, topics.topic, (m) => m.filter((x) => x.headers['kes-replay-count']).length >= 4, 15000);
    const replayed = all.filter((m) => m.headers['kes-replay-count']);
    expect(replayed).toHaveLength(4);
    for (const m of replayed) {
      const original = events.find((e) => e.eventId === m.headers.ce_id)!;
      expect(m.key).toBe(original.key);
      expect(JSON.parse(m.value!)).toEqual(original.payload);
      expect(m.headers).toMatchObject({ ce_type: original.ceType, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'kes-replay-count': '1' });
      expect(Object.keys(m.headers).filter((k) => k.startsWith('kes-dlq-'))).toEqual([]);
    }

    const audit = await db.pool.query('SELECT event_id::text, operator, reason, replay_count, original_topic FROM kes_dlq_replays ORDER BY id');
    expect(audit.rows).toHaveLength(4);
    expect(audit.rows[0]).toMatchObject({ operator: 'tester', reason: 'fixed the projection', replay_count: 1, original_topic: topics.topic });
    const committed = await committedOffsets(env.KES_DLQ_REPLAY_GROUP!, topics.dlq);
    expect(committed.filter((o) => o !== '-1').length).toBeGreaterThan(0);

    await waitUntil(async () => (await metricValue(consumer.registry, 'kes_consumer_processed_total', { result: 'applied' })) === 4, 20000, 'replays applied');
    const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM workspace_tenders WHERE org_id = 'org-replay'");
    expect(rows[0]!.n).toBe(4);

    const second = await runTool('replay-kes-dlq', ['--execute', '--max-messages', '50'], env);
    expect(second.json).toMatchObject({ ok: true, mode: 'execute', listed: 0, replayed: 0 });
    expect((await db.pool.query('SELECT 1 FROM kes_dlq_replays')).rowCount).toBe(4);
    // Replaying the same messages again (--from-beginning) still has one effect per event.
    const again = await runTool('replay-kes-dlq', ['--execute', '--from-beginning'], env);
    expect(again.json).toMatchObject({ listed: 4, replayed: 4 });
    await waitUntil(async () => (await metricValue(consumer.registry, 'kes_consumer_processed_total', { result: 'duplicate' })) === 4, 20000, 'duplicates');
    expect((await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM workspace_activity WHERE org_id = 'org-replay'")).rows[0]!.n).toBe(4);
  });

  it('refuses a message replayed KES_DLQ_MAX_REPLAYS times, but moves past it', async () => {
    const looping = { ...tenderLifecycle().created(), headers: { 'kes-replay-count': '3', 'kes-dlq-original-topic': topics.topic, 'kes-dlq-reason': 'retries_exhausted' } };
    await produce(kafka, topics.dlq, [looping]);
    const r = await runTool('replay-kes-dlq', ['--execute'], env);
    expect(r.json).toMatchObject({ listed: 1, replayed: 0, skipped: 1 });
    expect(r.json.items![0]).toMatchObject({ eventId: looping.eventId, action: 'skip', replayCount: 3 });
    expect((await runTool('replay-kes-dlq', [], env)).json).toMatchObject({ listed: 0 });
  });

  it('exits 1 with a clear message when the broker is unreachable, within 15 s', async () => {
    const r = await runTool('replay-kes-dlq', [], { ...env, KAFKA_BROKERS: '127.0.0.1:1', KES_TOOL_TIMEOUT_MS: '5000' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^replay:kes-dlq: Kafka at 127\.0\.0\.1:1 is unreachable/);
    expect(r.json).toMatchObject({ ok: false });
    expect(r.ms).toBeLessThan(15000);
  });
});

describe('replay:kes-outbox-poison', () => {
  let env: Record<string, string>;
  const ids: string[] = [];

  beforeAll(async () => {
    env = { DATABASE_URL: db.url, USER: 'tester' };
    for (let i = 0; i < 8; i++) {
      const written = await withTransaction(db.pool, (client) =>
        writeOutboxEvent(client, {
          aggregateType: 'tender',
          aggregateId: i < 6 ? `agg-${i}` : 'agg-special',
          eventType: i === 7 ? 'kvary.tenders.tender.closed' : 'kvary.tenders.tender.created',
          eventVersion: 1,
          topic: 'not-published-in-this-test',
          source: '/kvary/svc-tenders',
          payload: { i },
        }),
      );
      ids.push(String(written.id));
    }
    await db.pool.query(`UPDATE kes_outbox_events SET status = 'poison', attempts = 10, last_error = 'record too large'`);
  });

  const poisonCount = async () => (await db.pool.query(`SELECT 1 FROM kes_outbox_events WHERE status = 'poison'`)).rowCount;

  it('dry run lists poison rows with filters and changes nothing', async () => {
    const r = await runTool('replay-kes-outbox-poison', ['--max-rows', '50'], env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, mode: 'dry-run', listed: 8, replayed: 0 });
    expect(r.json.rows![0]).toMatchObject({ id: ids[0], attempts: 10, lastError: 'record too large' });
    expect((await runTool('replay-kes-outbox-poison', ['--aggregate-id', 'agg-special'], env)).json).toMatchObject({ listed: 2 });
    expect((await runTool('replay-kes-outbox-poison', ['--event-type', 'kvary.tenders.tender.closed.v1'], env)).json).toMatchObject({ listed: 1 });
    expect((await runTool('replay-kes-outbox-poison', ['--id', ids[3]!], env)).json.rows).toHaveLength(1);
    expect(await poisonCount()).toBe(8);
    expect((await db.pool.query('SELECT 1 FROM kes_outbox_replays')).rowCount).toBe(0);
  });

  it('execute puts rows back to pending with attempts reset and one audit row each', async () => {
    const r = await runTool('replay-kes-outbox-poison', ['--execute', '--id', ids[0]!, '--reason', 'broker limit raised', '--operator', 'alice'], env);
    expect(r.json).toMatchObject({ ok: true, mode: 'execute', replayed: 1 });
    const { rows } = await db.pool.query('SELECT status, attempts, last_error FROM kes_outbox_events WHERE id = $1', [ids[0]]);
    expect(rows[0]).toEqual({ status: 'pending', attempts: 0, last_error: null });
    const audit = await db.pool.query('SELECT outbox_id::text, operator, reason, previous_error, previous_attempts FROM kes_outbox_replays');
    expect(audit.rows).toEqual([{ outbox_id: ids[0], operator: 'alice', reason: 'broker limit raised', previous_error: 'record too large', previous_attempts: 10 }]);
  });

  it('two concurrent executes take disjoint rows (SKIP LOCKED), also past rows another transaction holds', async () => {
    // Another transaction holds row 2: neither execute may wait for or take it.
    const holder = await db.pool.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM kes_outbox_events WHERE id = $1 FOR UPDATE', [ids[1]]);
    try {
      const [a, b] = await Promise.all([
        runTool('replay-kes-outbox-poison', ['--execute', '--max-rows', '3'], env),
        runTool('replay-kes-outbox-poison', ['--execute', '--max-rows', '3'], env),
      ]);
      const taken = [...a.json.rows!, ...b.json.rows!].map((r) => r.id as string);
      expect(new Set(taken).size).toBe(taken.length);
      expect(taken).not.toContain(ids[1]);
      expect(taken.length).toBe(6);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    const audit = await db.pool.query<{ n: number; d: number }>('SELECT count(*)::int AS n, count(DISTINCT outbox_id)::int AS d FROM kes_outbox_replays');
    expect(audit.rows[0]).toEqual({ n: 7, d: 7 });
    expect(await poisonCount()).toBe(1);
  });

  it('exits 1 with a clear message when Postgres is unreachable', async () => {
    const r = await runTool('replay-kes-outbox-poison', [], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/kvary', KES_TOOL_TIMEOUT_MS: '3000' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^replay:kes-outbox-poison: Postgres at 127\.0\.0\.1:1 is unreachable/);
    expect(r.json).toMatchObject({ ok: false });
  });
});

describe('bad arguments: exit 2 with one line, nothing else', () => {
  const dlqCases: [string[], string][] = [
    [['--max-messages', 'abc'], 'replay:kes-dlq: --max-messages must be a non-negative integer (got "abc")'],
    [['--max-messages', '-1'], 'replay:kes-dlq: --max-messages must be a non-negative integer (got "-1")'],
    [['--max-messages=1.5'], 'replay:kes-dlq: --max-messages must be a non-negative integer (got "1.5")'],
    [['--max-messages='], 'replay:kes-dlq: --max-messages must be a non-negative integer (got "")'],
    [['--max-messages'], 'replay:kes-dlq: --max-messages needs a value'],
    [['--bogus'], 'replay:kes-dlq: unknown option --bogus (see --help)'],
    [['extra'], 'replay:kes-dlq: unexpected argument "extra" (see --help)'],
    [['--execute=yes'], 'replay:kes-dlq: --execute does not take a value'],
    [['--event-type', ''], 'replay:kes-dlq: --event-type must not be empty'],
    [['--operator', ' '], 'replay:kes-dlq: --operator must not be empty'],
  ];
  const poisonCases: [string[], string][] = [
    [['--max-rows', 'abc'], 'replay:kes-outbox-poison: --max-rows must be a non-negative integer (got "abc")'],
    [['--max-rows', '-5'], 'replay:kes-outbox-poison: --max-rows must be a non-negative integer (got "-5")'],
    [['--max-rows'], 'replay:kes-outbox-poison: --max-rows needs a value'],
    [['--id', 'x'], 'replay:kes-outbox-poison: --id must be a positive integer (got "x")'],
    [['--id', '0'], 'replay:kes-outbox-poison: --id must be a positive integer (got "0")'],
    [['--aggregate-id', ''], 'replay:kes-outbox-poison: --aggregate-id must not be empty'],
    [['--event-type', ''], 'replay:kes-outbox-poison: --event-type must not be empty'],
    [['--reason', ''], 'replay:kes-outbox-poison: --reason must not be empty'],
    [['--from-beginning'], 'replay:kes-outbox-poison: unknown option --from-beginning (see --help)'],
    [['--execute', 'now'], 'replay:kes-outbox-poison: unexpected argument "now" (see --help)'],
  ];
  // Unreachable infrastructure on purpose: argument errors must come first, without connecting.
  const env = { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/kvary', KAFKA_BROKERS: '127.0.0.1:1' };
  const npmEnv = { ...process.env, ...env };

  it.each(dlqCases)('replay:kes-dlq %j', (args, line) => {
    const r = runToolSync('replay-kes-dlq', args, env);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`${line}\n`);
  });

  it.each(poisonCases)('replay:kes-outbox-poison %j', (args, line) => {
    const r = runToolSync('replay-kes-outbox-poison', args, env);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`${line}\n`);
  });

  it('--help prints the usage and exits 0; the npm scripts work from the repo root with --prefix', () => {
    for (const script of ['replay:kes-dlq', 'replay:kes-outbox-poison']) {
      const r = spawnSync('npm', ['--prefix', 'services/svc-tenders', 'run', script, '--', '--help'], { cwd: REPO_ROOT, encoding: 'utf8', env: npmEnv });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`Usage: npm --prefix services/svc-tenders run ${script} -- [options]`);
      const bad = spawnSync('npm', ['--prefix', 'services/svc-tenders', 'run', script, '--', '--nope'], { cwd: REPO_ROOT, encoding: 'utf8', env: npmEnv });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain(`${script}: unknown option --nope (see --help)`);
    }
  });
});
