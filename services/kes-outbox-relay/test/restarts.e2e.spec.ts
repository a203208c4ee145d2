// At least once across infrastructure restarts: a private Kafka broker is stopped and started
// again mid-stream, and every Postgres connection of the relay is killed mid-stream (what a
// Postgres restart looks like from the relay). Nothing is lost, nothing is poisoned.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka } from '@kvary/platform/kafka';
import { createTestDatabase, type TestDatabase } from '@kvary/testing/postgres';
import { createTopics, testBrokers, testKafka, uniqueTopic } from '@kvary/testing/kafka';
import { aggregateIds, countByStatus, orderProblems, readTopic, startRelay, testRelayConfig, waitUntil, writeMany } from './helpers.js';
import { freePort } from '@kvary/testing/wait';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('relayrestart');
});
afterAll(async () => db.close());


describe('restarts', () => {
  it('a Kafka broker restart mid-stream: every event arrives once the broker is back, no row poisoned', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kes-kafka-'));
    const env = {
      ...process.env,
      KES_INFRA: 'local',
      KAFKA_PORT: String(await freePort()),
      KAFKA_CONTROLLER_PORT: String(await freePort()),
      KAFKA_LOCAL_DIR: dir,
    };
    const broker = (command: 'up' | 'down') => {
      const r = spawnSync(process.execPath, ['scripts/infra/kafka.js', command], { cwd: root, env, encoding: 'utf8', timeout: 120000 });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    };
    broker('up');
    const brokers = [`127.0.0.1:${env.KAFKA_PORT}`];
    const kafka = createKafka({ brokers, clientId: 'restart-test' });
    const topic = uniqueTopic('relay.kafka-restart');
    try {
      await createTopics(kafka, [{ topic, numPartitions: 3 }]);
      const relay = await startRelay(
        db.pool,
        kafka,
        testRelayConfig(db.url, brokers, { KES_RELAY_BATCH_SIZE: '100', KES_RELAY_SEND_TIMEOUT_MS: '5000', KES_RELAY_MAX_ATTEMPTS: '3' }),
      );
      try {
        const total = 2000;
        const writing = writeMany(db.pool, topic, total, aggregateIds(40), 2);
        await waitUntil(async () => ((await countByStatus(db.pool)).dispatched ?? 0) >= 300, 30000, '300 dispatched');
        broker('down');
        await new Promise((r) => setTimeout(r, 1500)); // the relay meets a dead broker
        broker('up');
        await writing;
        await waitUntil(async () => (await countByStatus(db.pool)).dispatched === total, 90000, 'all dispatched after the broker restart');
        expect((await countByStatus(db.pool)).poison ?? 0).toBe(0);
        const messages = await readTopic(kafka, topic, total, 60000);
        expect(new Set(messages.map((m) => m.headers.ce_id)).size).toBe(total);
        expect(await orderProblems(db.pool, messages)).toEqual([]);
      } finally {
        await relay.stop();
      }
    } finally {
      broker('down');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('all relay connections to Postgres killed mid-stream (as in a Postgres restart): the relay reconnects and finishes', async () => {
    await db.pool.query('TRUNCATE kes_outbox_events');
    const kafka = testKafka('relay-pg-restart');
    const topic = uniqueTopic('relay.pg-restart');
    await createTopics(kafka, [{ topic, numPartitions: 3 }]);
    // The relay gets its own pool so killing its connections does not touch the test's.
    const { createPool } = await import('@kvary/platform/postgres');
    const relayPool = createPool({ connectionString: db.url, max: 4, applicationName: 'kes-outbox-relay' });
    const relay = await startRelay(relayPool, kafka, testRelayConfig(db.url, testBrokers(), { KES_RELAY_BATCH_SIZE: '100' }));
    try {
      const total = 2000;
      const writing = writeMany(db.pool, topic, total, aggregateIds(40), 2);
      await waitUntil(async () => ((await countByStatus(db.pool)).dispatched ?? 0) >= 300, 30000, '300 dispatched');
      const killed = await db.pool.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name LIKE 'kes-outbox-relay%'`,
      );
      expect(killed.rowCount).toBeGreaterThanOrEqual(1);
      await writing;
      await waitUntil(async () => (await countByStatus(db.pool)).dispatched === total, 60000, 'all dispatched after reconnect');
      const messages = await readTopic(kafka, topic, total);
      expect(new Set(messages.map((m) => m.headers.ce_id)).size).toBe(total);
      expect(await orderProblems(db.pool, messages)).toEqual([]);
      expect(relay.relay.healthDetails()).toMatchObject({ relay: { lockSession: true, lanes: 64 } });
    } finally {
      await relay.stop();
      await relayPool.end();
    }
  });
});
