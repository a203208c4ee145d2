// vitest globalSetup: makes a real Postgres and a real Kafka broker available to every test
// file. Order of preference: the configured servers (DATABASE_URL / KAFKA_BROKERS) when they
// answer; else Testcontainers when a Docker engine answers; else the same local starters as
// `npm run db:up` / `npm run kafka:up`. Whatever it started, it stops at the end.
// It also builds one migrated template database; test files clone it (CREATE DATABASE ... TEMPLATE).
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createKafka, parseBrokers } from '@kvary/platform/kafka';
import { runMigrations } from '@kvary/platform/migrations';
import { withDatabase } from '@kvary/platform/postgres';
import type {} from '@kvary/testing/postgres';
import { migrationSets } from '../scripts/migration-sets.js';
import { dbDown, dbUp } from '../scripts/infra/db.js';
import { kafkaDown, kafkaUp } from '../scripts/infra/kafka.js';
import { dockerAvailable } from '../scripts/infra/lib.js';
import { freePort } from '@kvary/testing/wait';

type Stop = () => Promise<unknown>;

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function kafkaAnswers(brokers: string): Promise<boolean> {
  const admin = createKafka({ brokers: parseBrokers(brokers), clientId: 'kvary-test-probe', retries: 0, connectionTimeoutMs: 2000 }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}


async function startPostgresContainer(stops: Stop[]): Promise<string> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer('postgres:16')
    .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  stops.push(() => container.stop());
  return `postgres://postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
}

async function startKafkaContainer(stops: Stop[]): Promise<string> {
  const { GenericContainer, Wait } = await import('testcontainers');
  // Kafka advertises the address clients must use, so the host port is chosen up front.
  const hostPort = await freePort();
  const container = await new GenericContainer('apache/kafka:4.1.1')
    .withExposedPorts({ container: 9092, host: hostPort })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${hostPort}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .start();
  stops.push(() => container.stop());
  return `127.0.0.1:${hostPort}`;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: Stop[] = [];
  const log = (message: string) => process.stdout.write(`[test-infra] ${message}\n`);

  let adminUrl = withDatabase(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/kvary', 'postgres');
  if (await postgresAnswers(adminUrl)) {
    log(`Postgres: using the configured server ${new URL(adminUrl).host}`);
  } else if (dockerAvailable()) {
    adminUrl = await startPostgresContainer(stops);
    log(`Postgres: started a Testcontainers postgres:16 at ${new URL(adminUrl).host}`);
  } else {
    const result = await dbUp({ quiet: true });
    if (result.started) stops.push(() => dbDown());
    adminUrl = withDatabase(result.databaseUrl, 'postgres');
    log(`Postgres: local server at ${new URL(adminUrl).host}${result.started ? ' (started for this run)' : ''}`);
  }

  let brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
  if (await kafkaAnswers(brokers)) {
    log(`Kafka: using the configured broker ${brokers}`);
  } else if (dockerAvailable()) {
    brokers = await startKafkaContainer(stops);
    log(`Kafka: started a Testcontainers apache/kafka:4.1.1 at ${brokers}`);
  } else {
    const result = await kafkaUp({ quiet: true });
    if (result.started) stops.push(() => kafkaDown());
    brokers = result.brokers;
    log(`Kafka: local broker at ${brokers}${result.started ? ' (started for this run)' : ''}`);
  }

  // One template per run (pid in the name) so two runs on one server never collide.
  const template = `kvary_tpl_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${template}"`);
  await admin.end();
  const started = Date.now();
  await runMigrations({ databaseUrl: withDatabase(adminUrl, template), sets: migrationSets });
  log(`template database ${template} migrated in ${Date.now() - started} ms`);

  project.provide('adminDatabaseUrl', adminUrl);
  project.provide('templateDatabase', template);
  project.provide('kafkaBrokers', brokers);

  return async () => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect().catch(() => undefined);
    await c.query(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`).catch(() => undefined);
    await c.end().catch(() => undefined);
    for (const stop of stops.reverse()) await stop();
  };
}
