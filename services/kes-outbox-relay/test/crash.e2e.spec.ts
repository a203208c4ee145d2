// Real relay processes: kill -9 in the middle of a stream, restart, and nothing is lost;
// SIGTERM stops the process cleanly with exit code 0.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kafka } from 'kafkajs';
import { createTestDatabase, type TestDatabase } from '@kvary/testing/postgres';
import { createTopics, testBrokers, testKafka, uniqueTopic } from '@kvary/testing/kafka';
import { aggregateIds, countByStatus, orderProblems, readTopic, waitUntil, writeMany } from './helpers.js';

const serviceDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let db: TestDatabase;
let kafka: Kafka;

beforeAll(async () => {
  db = await createTestDatabase('relaycrash');
  kafka = testKafka('relay-crash-test');
});
afterAll(async () => db.close());

function spawnRelay(extraEnv: Record<string, string> = {}): ChildProcess & { output: string[] } {
  const child = spawn(process.execPath, ['--conditions=kvary-source', '--import', 'tsx', 'src/main.ts'], {
    cwd: serviceDir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: db.url,
      KAFKA_BROKERS: testBrokers().join(','),
      RELAY_PORT: '0',
      KES_ENV: 'test',
      LOG_LEVEL: 'warn',
      KES_RELAY_BATCH_SIZE: '200',
      KES_RELAY_POLL_INTERVAL_MS: '200',
      KES_RELAY_REBALANCE_INTERVAL_MS: '300',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { output: string[] };
  child.output = [];
  child.stdout?.on('data', (d) => child.output.push(String(d)));
  child.stderr?.on('data', (d) => child.output.push(String(d)));
  return child;
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('crash safety (real relay processes)', () => {
  it('kill -9 mid-stream of 5,000 events, then restart: Kafka holds every event id of the table, in order per aggregate', async () => {
    const topic = uniqueTopic('relay.crash');
    await createTopics(kafka, [{ topic, numPartitions: 3 }]);
    const total = 5000;
    const first = spawnRelay();
    const writing = writeMany(db.pool, topic, total, aggregateIds(100), 6);
    // Kill the relay while rows are flowing: after some are dispatched, not all.
    await waitUntil(async () => ((await countByStatus(db.pool)).dispatched ?? 0) >= 1200, 60000, 'first relay to dispatch 1,200');
    first.kill('SIGKILL');
    const killed = await exitOf(first);
    expect(killed.signal).toBe('SIGKILL');
    const atKill = (await countByStatus(db.pool)).dispatched ?? 0;

    const second = spawnRelay();
    try {
      await writing;
      await waitUntil(async () => (await countByStatus(db.pool)).dispatched === total, 90000, 'all 5,000 dispatched after restart');
      const messages = await readTopic(kafka, topic, total, 60000);
      const inKafka = new Set(messages.map((m) => m.headers.ce_id));
      const { rows } = await db.pool.query<{ event_id: string }>('SELECT event_id FROM kes_outbox_events');
      const inTable = new Set(rows.map((r) => r.event_id));
      const missing = [...inTable].filter((id) => !inKafka.has(id));
      const unknown = [...inKafka].filter((id) => !inTable.has(id as string));
      const duplicates = messages.length - inKafka.size;
      console.log(
        JSON.stringify({ test: 'kill-9', events: total, dispatchedAtKill: atKill, messages: messages.length, duplicates, missing: missing.length }),
      );
      expect(missing).toEqual([]);
      expect(unknown).toEqual([]);
      expect(inKafka.size).toBe(total);
      // Duplicates can only come from the batch in flight at the kill.
      expect(duplicates).toBeLessThanOrEqual(400);
      expect(await orderProblems(db.pool, messages)).toEqual([]);
    } finally {
      second.kill('SIGTERM');
      const stopped = await exitOf(second);
      expect(stopped.code, second.output.join('')).toBe(0);
    }
  });

  it('SIGTERM while idle exits 0 within the configured timeout', async () => {
    const relay = spawnRelay({ KES_RELAY_SHUTDOWN_TIMEOUT_MS: '3000' });
    await waitUntil(() => isRelayUp(), 20000, 'relay start');
    const started = Date.now();
    relay.kill('SIGTERM');
    const result = await exitOf(relay);
    expect(result.code, relay.output.join('')).toBe(0);
    expect(Date.now() - started).toBeLessThan(8000);
  });
});

// The relay logs at warn level only, so "started" is seen through its lock session in pg_stat_activity.
async function isRelayUp(): Promise<boolean> {
  const { rowCount } = await db.pool.query(
    `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'kes-outbox-relay-locks'`,
  );
  return (rowCount ?? 0) > 0;
}
