// `npm run kafka:kes-smoke`: produce a probe to kes.smoke.v1 and read it back with a fresh
// consumer group. One JSON line: {"ok":true, roundTripMs, clusterId, ...} or {"ok":false,
// step, error} with exit code 1, always within KES_SMOKE_TIMEOUT_MS (15 s by default).
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Consumer, Producer, Admin } from 'kafkajs';
import { loadConfig } from '@kvary/platform/config';
import { createKafka, parseBrokers } from '@kvary/platform/kafka';

const config = loadConfig(
  z.object({
    KAFKA_BROKERS: z.string().min(1).default('127.0.0.1:9092'),
    KES_SMOKE_TOPIC: z.string().min(1).default('kes.smoke.v1'),
    KES_SMOKE_TIMEOUT_MS: z.coerce.number().int().min(1000).default(15000),
  }),
);

const KES_TOPICS = ['kes.tenders.v1', 'kes.tenders.v1.dlq', config.KES_SMOKE_TOPIC];
const kafka = createKafka({
  brokers: parseBrokers(config.KAFKA_BROKERS),
  clientId: 'kes-smoke',
  retries: 1,
  connectionTimeoutMs: 2000,
  requestTimeoutMs: 5000,
});
const started = Date.now();
let step = 'connect';
let admin: Admin | undefined;
let producer: Producer | undefined;
let consumer: Consumer | undefined;

function finish(result: Record<string, unknown>, code: number): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(code);
}

// A hard deadline: kafkajs retry loops must never keep the smoke running.
setTimeout(() => finish({ ok: false, step, error: `no result within ${config.KES_SMOKE_TIMEOUT_MS} ms`, brokers: config.KAFKA_BROKERS }, 1), config.KES_SMOKE_TIMEOUT_MS).unref();

try {
  admin = kafka.admin();
  await admin.connect();
  step = 'describe-cluster';
  const cluster = await admin.describeCluster();
  step = 'topic-metadata';
  const existing = new Set(await admin.listTopics());
  const missing = KES_TOPICS.filter((t) => !existing.has(t));
  if (missing.length) throw new Error(`missing topics ${missing.join(', ')} (run npm run kafka:up)`);
  const metadata = await admin.fetchTopicMetadata({ topics: KES_TOPICS });
  const topics = Object.fromEntries(metadata.topics.map((t) => [t.name, t.partitions.length]));

  step = 'produce';
  const probeId = randomUUID();
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  const sentAt = Date.now();
  const [meta] = await producer.send({
    topic: config.KES_SMOKE_TOPIC,
    acks: -1,
    messages: [{ key: 'kes-smoke', value: JSON.stringify({ probeId, sentAt }), headers: { ce_id: probeId, ce_type: 'kvary.smoke.probe.v1' } }],
  });
  if (!meta) throw new Error('no produce acknowledgement');

  step = 'consume';
  consumer = kafka.consumer({ groupId: `kes-smoke-${probeId}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: config.KES_SMOKE_TOPIC, fromBeginning: true });
  const received = new Promise<number>((resolve) => {
    void consumer!.run({
      eachMessage: async ({ message }) => {
        if (message.headers?.ce_id?.toString() === probeId) resolve(Date.now());
      },
    });
  });
  // Start reading at the probe's own offset: the fresh group must not scan the topic's history.
  consumer.seek({ topic: config.KES_SMOKE_TOPIC, partition: meta.partition, offset: meta.baseOffset ?? '0' });
  const receivedAt = await received;

  step = 'cleanup';
  await consumer.disconnect();
  await admin.deleteGroups([`kes-smoke-${probeId}`]).catch(() => undefined);
  await producer.disconnect();
  await admin.disconnect();
  finish(
    {
      ok: true,
      topic: config.KES_SMOKE_TOPIC,
      partition: meta.partition,
      offset: meta.baseOffset,
      roundTripMs: receivedAt - sentAt,
      totalMs: Date.now() - started,
      clusterId: cluster.clusterId,
      brokers: cluster.brokers.map((b) => `${b.host}:${b.port}`),
      topics,
    },
    0,
  );
} catch (error) {
  finish({ ok: false, step, error: (error as Error).message, brokers: config.KAFKA_BROKERS }, 1);
}
