// Kafka side of the relay: CloudEvents binary-mode messages, explicit partitions (so every
// acknowledged record's partition and offset are known), size-bounded produce requests.
import { Partitioners, type Admin, type Kafka, type Message, type PartitionMetadata, type Producer } from 'kafkajs';
import type { Logger } from '@kvary/platform/logging';
import type { ClaimedRow, Acked } from './store.js';
import { classifyKafkaError, type ClassifiedFailure } from './kafka-errors.js';

export interface Outgoing {
  row: ClaimedRow;
  topic: string;
  partition: number;
  message: Message;
  bytes: number;
}

export interface PublisherOptions {
  sendTimeoutMs: number;
  maxRequestBytes: number;
  maxMessageBytes: number;
  metadataTtlMs?: number;
}

class RelaySendTimeout extends Error {
  override name = 'RelaySendTimeout';
}

/** CloudEvents 1.0 Kafka binary mode: data in the value, attributes as ce_* headers. */
export function cloudEventHeaders(row: ClaimedRow): Record<string, string> {
  const extra = row.headers;
  const headers: Record<string, string> = {
    ce_specversion: '1.0',
    ce_id: row.eventId,
    ce_type: `${row.eventType}.v${row.eventVersion}`,
    ce_source: row.source,
    ce_time: row.createdAt.toISOString(),
    ce_subject: row.aggregateId,
    'content-type': 'application/json',
    'kes-outbox-id': row.id,
  };
  // Extra headers (traceparent, x-request-id) never override the CloudEvents attributes.
  for (const key in extra) if (!(key in headers)) headers[key] = extra[key]!;
  return headers;
}

export class Publisher {
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private readonly metadata = new Map<string, { partitions: PartitionMetadata[]; at: number }>();

  constructor(
    kafka: Kafka,
    private readonly logger: Logger,
    private readonly options: PublisherOptions,
  ) {
    // Idempotent producer: acks=all and one request in flight, so kafkajs's own retries
    // cannot reorder or duplicate records within a partition.
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2000 },
    });
    this.admin = kafka.admin({ retry: { retries: 1 } });
  }

  async connect(): Promise<void> {
    await this.producer.connect();
    await this.admin.connect();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
  }

  /** Health: the cluster answers a metadata request. */
  async ping(): Promise<void> {
    await this.admin.describeCluster();
  }

  private async partitionsFor(topic: string): Promise<PartitionMetadata[]> {
    const cached = this.metadata.get(topic);
    if (cached && Date.now() - cached.at < (this.options.metadataTtlMs ?? 30000)) return cached.partitions;
    const { topics } = await this.admin.fetchTopicMetadata({ topics: [topic] });
    const partitions = topics[0]?.partitions ?? [];
    if (partitions.length === 0) throw Object.assign(new Error(`topic ${topic} has no partitions`), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
    this.metadata.set(topic, { partitions, at: Date.now() });
    return partitions;
  }

  /**
   * Turns rows into messages. Rows that can never be sent (too large) or whose topic cannot
   * be resolved come back in `failed`; an unreachable cluster throws (infrastructure).
   */
  async prepare(rows: ClaimedRow[]): Promise<{ ready: Outgoing[]; failed: { row: ClaimedRow; failure: ClassifiedFailure }[] }> {
    const ready: Outgoing[] = [];
    const failed: { row: ClaimedRow; failure: ClassifiedFailure }[] = [];
    const topicFailures = new Map<string, ClassifiedFailure>();
    for (const topic of new Set(rows.map((r) => r.topic))) {
      try {
        await this.partitionsFor(topic);
      } catch (error) {
        const failure = classifyKafkaError(error);
        if (failure.kind === 'infrastructure') throw error;
        topicFailures.set(topic, { ...failure, message: `topic ${topic}: ${failure.message}` });
      }
    }
    for (const row of rows) {
      const topicFailure = topicFailures.get(row.topic);
      if (topicFailure) {
        failed.push({ row, failure: topicFailure });
        continue;
      }
      const headers = cloudEventHeaders(row);
      // Exact for the payload (it may hold any UTF-8). Headers are ASCII (ids, types, times, and
      // traceparent / x-request-id, which the services validate), so length = bytes.
      let bytes = Buffer.byteLength(row.aggregateId) + Buffer.byteLength(row.payload) + 70;
      for (const key in headers) bytes += key.length + headers[key]!.length + 4;
      if (bytes > this.options.maxMessageBytes) {
        failed.push({
          row,
          failure: { kind: 'fatal', reason: 'record_too_large', message: `record of ${bytes} bytes exceeds ${this.options.maxMessageBytes}` },
        });
        continue;
      }
      const message: Message = { key: row.aggregateId, value: row.payload, headers };
      const partitions = this.metadata.get(row.topic)?.partitions ?? [];
      const partition = this.partitioner({ topic: row.topic, partitionMetadata: partitions, message });
      ready.push({ row, topic: row.topic, partition, message: { ...message, partition }, bytes });
    }
    return { ready, failed };
  }

  /**
   * Sends in order, in requests of at most maxRequestBytes, each awaited before the next
   * (order across requests). Resolves with partition/offset of every record once acked.
   */
  async send(outgoing: Outgoing[]): Promise<Acked[]> {
    const acked: Acked[] = [];
    let chunk: Outgoing[] = [];
    let chunkBytes = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      acked.push(...(await this.sendChunk(chunk)));
      chunk = [];
      chunkBytes = 0;
    };
    for (const item of outgoing) {
      if (chunkBytes + item.bytes > this.options.maxRequestBytes) await flush();
      chunk.push(item);
      chunkBytes += item.bytes;
    }
    await flush();
    return acked;
  }

  private async sendChunk(chunk: Outgoing[]): Promise<Acked[]> {
    const byTopic = new Map<string, Outgoing[]>();
    for (const item of chunk) {
      const list = byTopic.get(item.topic) ?? [];
      list.push(item);
      byTopic.set(item.topic, list);
    }
    let timer: NodeJS.Timeout | undefined;
    const results = await Promise.race([
      this.producer.sendBatch({
        acks: -1,
        timeout: this.options.sendTimeoutMs,
        topicMessages: [...byTopic.entries()].map(([topic, items]) => ({ topic, messages: items.map((i) => i.message) })),
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RelaySendTimeout(`no acknowledgement within ${this.options.sendTimeoutMs} ms`)), this.options.sendTimeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    const base = new Map<string, bigint>();
    for (const r of results) base.set(`${r.topicName}\u0000${r.partition}`, BigInt(r.baseOffset ?? '0'));
    const next = new Map<string, bigint>();
    return chunk.map((item) => {
      const key = `${item.topic}\u0000${item.partition}`;
      const offset = next.get(key) ?? base.get(key) ?? -1n;
      next.set(key, offset + 1n);
      return { id: item.row.id, partition: item.partition, offset: offset.toString() };
    });
  }
}
