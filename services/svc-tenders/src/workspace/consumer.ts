// The workspace projection consumer: reads KES tender events, applies each once (inbox), retries
// transient failures in-process, and dead-letters what it cannot apply. An offset is committed
// only after the message's effect is durable: applied in Postgres, or acknowledged by the DLQ.
import { Partitioners, type Admin, type Consumer, type EachMessagePayload, type IHeaders, type Kafka, type KafkaMessage, type Producer } from 'kafkajs';
import { ContractViolationError, UnknownEventTypeError } from '@kvary/contracts/tenders';
import type { Logger } from '@kvary/platform/logging';
import type { Pool } from '@kvary/platform/postgres';
import type { WorkspaceConsumerSettings } from '../config.js';
import type { ConsumerMetrics } from './metrics.js';
import { applyEvent, validate, type IncomingEvent } from './projector.js';

export const DLQ_HEADERS = {
  originalTopic: 'kes-dlq-original-topic',
  originalPartition: 'kes-dlq-original-partition',
  originalOffset: 'kes-dlq-original-offset',
  errorClass: 'kes-dlq-error-class',
  errorMessage: 'kes-dlq-error-message',
  reason: 'kes-dlq-reason',
  attempts: 'kes-dlq-attempts',
  failedAt: 'kes-dlq-failed-at',
  consumerGroup: 'kes-dlq-consumer-group',
} as const;

export type DlqReason = 'unknown_event_type' | 'contract_violation' | 'invalid_envelope' | 'retries_exhausted';

export type ConsumerState = 'starting' | 'running' | 'stopping' | 'stopped' | 'off';

export interface ConsumerStatus {
  state: ConsumerState;
  mode: 'embedded' | 'standalone' | 'off';
  topic?: string;
  group?: string;
  /** Sum over partitions of high-water mark minus committed offset; null before the first reading. */
  lag?: number | null;
  lagByPartition?: Record<string, number>;
  lastError?: string;
}

export interface WorkspaceConsumerDeps {
  pool: Pool;
  kafka: Kafka;
  logger: Logger;
  metrics: ConsumerMetrics;
  settings: WorkspaceConsumerSettings;
  mode?: 'embedded' | 'standalone';
  /** Test seam: runs inside the projection transaction; throw to simulate a failure. */
  beforeApply?: (event: IncomingEvent) => void | Promise<void>;
}

class InvalidEnvelopeError extends Error {
  override name = 'InvalidEnvelopeError';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value[0] : value)?.toString();
}

/** A message to process: parsed envelope, or the non-retriable reason it cannot be. */
function decode(topic: string, partition: number, message: KafkaMessage): IncomingEvent {
  const eventId = headerString(message.headers, 'ce_id');
  const ceType = headerString(message.headers, 'ce_type');
  if (!eventId || !UUID.test(eventId)) throw new InvalidEnvelopeError(`ce_id header missing or not a UUID (${JSON.stringify(eventId ?? null)})`);
  if (!ceType) throw new InvalidEnvelopeError('ce_type header missing');
  let data: unknown;
  try {
    data = JSON.parse(message.value?.toString() ?? '');
  } catch (error) {
    throw new ContractViolationError(ceType, [
      { code: 'custom', path: [], message: `value is not JSON: ${(error as Error).message}`, input: undefined },
    ]);
  }
  return { eventId, ceType, topic, partition, offset: message.offset, data };
}

function nonRetriableReason(error: unknown): DlqReason | undefined {
  if (error instanceof UnknownEventTypeError) return 'unknown_event_type';
  if (error instanceof ContractViolationError) return 'contract_violation';
  if (error instanceof InvalidEnvelopeError) return 'invalid_envelope';
  return undefined;
}

export class WorkspaceConsumer {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly settings: WorkspaceConsumerSettings;
  private state: ConsumerState = 'stopped';
  private lagByPartition: Record<string, number> | undefined;
  private lastError: string | undefined;
  private lagTimer: NodeJS.Timeout | undefined;
  private lagRun: Promise<void> = Promise.resolve();
  private stopRequested = new AbortController();
  private stopping: Promise<void> | undefined;
  private starting: Promise<void> | undefined;

  constructor(private readonly deps: WorkspaceConsumerDeps) {
    this.settings = deps.settings;
    this.consumer = deps.kafka.consumer({
      groupId: this.settings.CONSUMER_GROUP,
      allowAutoTopicCreation: false,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      maxWaitTimeInMs: 500,
    });
    // acks=-1 on every send; idempotent so the client's own retries cannot duplicate a DLQ record.
    this.producer = deps.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.admin = deps.kafka.admin();
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      this.lastError = payload.error.message;
      deps.logger.error({ err: payload.error, restart: payload.restart }, 'workspace consumer crashed');
      if (!payload.restart) this.state = 'stopped';
    });
  }

  status(): ConsumerStatus {
    const lag = this.lagByPartition ? Object.values(this.lagByPartition).reduce((a, b) => a + b, 0) : null;
    return {
      state: this.state,
      mode: this.deps.mode ?? 'embedded',
      topic: this.settings.CONSUMER_TOPIC,
      group: this.settings.CONSUMER_GROUP,
      lag,
      ...(this.lagByPartition ? { lagByPartition: this.lagByPartition } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** Connects and starts consuming; throws when Kafka is unreachable (the caller retries). */
  start(): Promise<void> {
    this.starting ??= this.connectAndRun().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async connectAndRun(): Promise<void> {
    if (this.state === 'running') return;
    this.state = 'starting';
    this.stopRequested = new AbortController();
    try {
      await this.producer.connect();
      await this.admin.connect();
      await this.consumer.connect();
      await this.consumer.subscribe({ topics: [this.settings.CONSUMER_TOPIC], fromBeginning: true });
      await this.consumer.run({
        autoCommit: false,
        // One message at a time per partition, partitions one after another: per-partition order holds.
        partitionsConsumedConcurrently: 1,
        eachMessage: (payload) => this.handle(payload),
      });
    } catch (error) {
      this.state = 'stopped';
      this.lastError = (error as Error).message;
      await Promise.allSettled([this.consumer.disconnect(), this.producer.disconnect(), this.admin.disconnect()]);
      throw error;
    }
    this.state = 'running';
    this.lastError = undefined;
    this.lagRun = this.measureLag();
    this.lagTimer = setInterval(() => {
      this.lagRun = this.measureLag();
    }, this.settings.CONSUMER_LAG_INTERVAL_MS);
    this.lagTimer.unref();
  }

  /** Stops fetching, lets the in-flight message finish (or abandons its backoff), disconnects. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      if (this.state === 'stopped' || this.state === 'off') return;
      this.state = 'stopping';
      clearInterval(this.lagTimer);
      // consumer.stop() marks the runner stopped synchronously; only then wake a sleeping retry,
      // so kafkajs never hands us the next message of the batch.
      const stopped = this.consumer.stop();
      this.stopRequested.abort();
      await stopped.catch((error: unknown) => this.deps.logger.warn({ err: error }, 'consumer stop failed'));
      await this.lagRun;
      await Promise.allSettled([this.consumer.disconnect(), this.producer.disconnect(), this.admin.disconnect()]);
      this.state = 'stopped';
    })().finally(() => {
      this.stopping = undefined;
    });
    return this.stopping;
  }

  /** Refreshes kes_consumer_lag from the high-water marks and the group's committed offsets. */
  async measureLag(): Promise<void> {
    try {
      const topic = this.settings.CONSUMER_TOPIC;
      const [ends, committed] = await Promise.all([
        this.admin.fetchTopicOffsets(topic),
        this.admin.fetchOffsets({ groupId: this.settings.CONSUMER_GROUP, topics: [topic] }),
      ]);
      const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
      const lag: Record<string, number> = {};
      for (const end of ends) {
        const position = done.get(end.partition) ?? -1n;
        // No commit yet: everything from the low-water mark on is still to be read.
        const from = position >= 0n ? position : BigInt(end.low);
        const value = Number(BigInt(end.high) - from);
        lag[String(end.partition)] = Math.max(0, value);
        this.deps.metrics.lag(end.partition, Math.max(0, value));
      }
      this.lagByPartition = lag;
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'could not measure consumer lag');
    }
  }

  private async handle({ topic, partition, message, heartbeat }: EachMessagePayload): Promise<void> {
    const outcome = await this.process(topic, partition, message, heartbeat);
    // Shutting down in the middle of a retry: leave the offset uncommitted; it is redelivered.
    if (outcome === 'abandoned') return;
    await this.consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
  }

  private async process(
    topic: string,
    partition: number,
    message: KafkaMessage,
    heartbeat: () => Promise<void>,
  ): Promise<'done' | 'abandoned'> {
    const { logger, metrics } = this.deps;
    let event: IncomingEvent;
    let payload: ReturnType<typeof validate>;
    try {
      event = decode(topic, partition, message);
      payload = validate(event);
    } catch (error) {
      const reason = nonRetriableReason(error);
      if (!reason) throw error;
      logger.warn({ topic, partition, offset: message.offset, reason, err: error }, 'dead-lettering an invalid message');
      return this.deadLetter(topic, partition, message, reason, error as Error, 1, heartbeat);
    }

    const maxAttempts = this.settings.CONSUMER_MAX_RETRIES + 1;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await applyEvent(
          this.deps.pool,
          { consumerGroup: this.settings.CONSUMER_GROUP, beforeApply: this.deps.beforeApply },
          event,
          payload,
        );
        metrics.processed(result);
        return 'done';
      } catch (error) {
        if (attempt >= maxAttempts) {
          logger.error({ eventId: event.eventId, attempts: attempt, err: error }, 'projection failed after retries; dead-lettering');
          return this.deadLetter(topic, partition, message, 'retries_exhausted', error as Error, attempt, heartbeat);
        }
        metrics.retried();
        const delay = this.backoff(attempt);
        logger.warn({ eventId: event.eventId, attempt, retryInMs: delay, err: error }, 'projection failed; retrying');
        if (!(await this.sleep(delay))) return 'abandoned';
        // A rebalance error from heartbeat propagates: kafkajs rejoins and the message is redelivered.
        await heartbeat();
      }
    }
  }

  private backoff(attempt: number): number {
    const exponential = this.settings.CONSUMER_RETRY_BASE_MS * 2 ** (attempt - 1);
    // Up to 20% jitter so many consumers hitting one failure do not retry in lockstep.
    return Math.min(this.settings.CONSUMER_RETRY_MAX_MS, exponential) * (1 + Math.random() * 0.2);
  }

  /** Resolves true after ms, false at once when stop() was requested. */
  private sleep(ms: number): Promise<boolean> {
    const signal = this.stopRequested.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Produces the message to the DLQ with its key, value and original headers plus the kes-dlq-*
   * headers, acks=-1. Retries until acknowledged: the offset must not be committed before.
   */
  private async deadLetter(
    topic: string,
    partition: number,
    message: KafkaMessage,
    reason: DlqReason,
    error: Error,
    attempts: number,
    heartbeat: () => Promise<void>,
  ): Promise<'done' | 'abandoned'> {
    const headers: IHeaders = {};
    for (const [name, value] of Object.entries(message.headers ?? {})) {
      // A previous DLQ trip's headers are replaced, not duplicated (the replay tool strips them anyway).
      if (value !== undefined && !name.startsWith('kes-dlq-')) headers[name] = value;
    }
    Object.assign(headers, {
      [DLQ_HEADERS.originalTopic]: topic,
      [DLQ_HEADERS.originalPartition]: String(partition),
      [DLQ_HEADERS.originalOffset]: message.offset,
      [DLQ_HEADERS.errorClass]: error.name || error.constructor.name,
      [DLQ_HEADERS.errorMessage]: error.message.slice(0, 2000),
      [DLQ_HEADERS.reason]: reason,
      [DLQ_HEADERS.attempts]: String(attempts),
      [DLQ_HEADERS.failedAt]: new Date().toISOString(),
      [DLQ_HEADERS.consumerGroup]: this.settings.CONSUMER_GROUP,
    });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.producer.send({
          topic: this.settings.CONSUMER_DLQ_TOPIC,
          acks: -1,
          messages: [{ key: message.key, value: message.value, headers }],
        });
        this.deps.metrics.dlq(reason);
        return 'done';
      } catch (sendError) {
        const delay = this.backoff(Math.min(attempt, 6));
        this.deps.logger.error({ err: sendError, retryInMs: delay }, 'could not produce to the DLQ; retrying');
        if (!(await this.sleep(delay))) return 'abandoned';
        await heartbeat();
      }
    }
  }
}

/**
 * Starts the consumer, retrying while Kafka is unreachable (it may be starting alongside), until
 * started or stop() is called. Never throws.
 */
export async function startWhenReachable(consumer: WorkspaceConsumer, logger: Logger, isStopping: () => boolean): Promise<void> {
  for (let attempt = 1; !isStopping(); attempt++) {
    try {
      await consumer.start();
      logger.info(consumer.status(), 'workspace consumer running');
      return;
    } catch (error) {
      const wait = Math.min(10_000, 500 * attempt);
      logger.warn({ err: error, retryInMs: wait }, 'workspace consumer cannot start yet');
      await new Promise((resolve) => setTimeout(resolve, wait).unref());
    }
  }
}
