// Kafka helpers for tests: the broker the global setup found, unique topic names, and a
// collector that reads a topic from the beginning with a fresh consumer group.
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type { Consumer, IHeaders, Kafka } from 'kafkajs';
import { createKafka, ensureTopics, parseBrokers } from '@kvary/platform/kafka';

export function testBrokers(): string[] {
  return parseBrokers(inject('kafkaBrokers'));
}

export function testKafka(clientId = 'kvary-test'): Kafka {
  return createKafka({ brokers: testBrokers(), clientId });
}

/** A topic name no other test file uses. */
export function uniqueTopic(prefix = 'test'): string {
  return `${prefix}.${Date.now().toString(36)}.${randomBytes(3).toString('hex')}`;
}

export async function createTopics(kafka: Kafka, topics: { topic: string; numPartitions?: number }[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, topics);
  } finally {
    await admin.disconnect();
  }
}

export interface CollectedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

export function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(String).join(',') : v.toString();
  }
  return out;
}

/**
 * Reads the topic from the beginning until `until(messages)` holds or timeoutMs passes.
 * Returns whatever arrived (the caller asserts).
 */
export async function collectMessages(
  kafka: Kafka,
  topic: string,
  until: (messages: CollectedMessage[]) => boolean,
  timeoutMs = 30000,
): Promise<CollectedMessage[]> {
  const messages: CollectedMessage[] = [];
  const consumer: Consumer = kafka.consumer({ groupId: `collector-${randomBytes(4).toString('hex')}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  await consumer.run({
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        messages.push({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key?.toString() ?? null,
          value: m.value?.toString() ?? null,
          headers: headersToStrings(m.headers),
        });
      }
      if (until(messages)) resolveDone();
    },
  });
  const timer = setTimeout(resolveDone, timeoutMs);
  if (until(messages)) resolveDone();
  await done;
  clearTimeout(timer);
  await consumer.disconnect();
  return messages;
}
