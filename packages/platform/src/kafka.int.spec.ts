import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin } from 'kafkajs';
import { testKafka, uniqueTopic } from '@kvary/testing/kafka';
import { ensureTopics } from './kafka.js';

let admin: Admin;

beforeAll(async () => {
  admin = testKafka('platform-kafka-test').admin();
  await admin.connect();
});
afterAll(async () => admin.disconnect());

describe('ensureTopics (real broker)', () => {
  it('creates missing topics with the requested partitions, and is idempotent', async () => {
    const a = uniqueTopic('platform.a');
    const b = uniqueTopic('platform.b');
    const specs = [
      { topic: a, numPartitions: 3 },
      { topic: b, numPartitions: 1 },
    ];
    expect((await ensureTopics(admin, specs)).sort()).toEqual([a, b].sort());
    expect(await ensureTopics(admin, specs)).toEqual([]);
    const metadata = await admin.fetchTopicMetadata({ topics: [a, b] });
    const partitions = Object.fromEntries(metadata.topics.map((t) => [t.name, t.partitions.length]));
    expect(partitions).toEqual({ [a]: 3, [b]: 1 });
  });

  it('tolerates concurrent callers racing to create the same topic', async () => {
    const topic = uniqueTopic('platform.race');
    const results = await Promise.all([ensureTopics(admin, [{ topic }]), ensureTopics(admin, [{ topic }])]);
    expect(results.flat().length).toBeGreaterThanOrEqual(1);
    expect(await admin.listTopics()).toContain(topic);
  });
});
