// The relay loop: own lanes, claim a batch, publish it in one request, mark it dispatched.
// Failure handling keeps three promises: nothing committed is lost (rows stay pending until
// acked), per-aggregate order (a failed row blocks only later rows of its own aggregate), and
// an outage never poisons rows (broker-level failures back off the relay, not the rows).
import type { Kafka } from 'kafkajs';
import type { Logger } from '@kvary/platform/logging';
import { pingDatabase, type Pool } from '@kvary/platform/postgres';
import type { RelayConfig } from './config.js';
import { classifyKafkaError, type ClassifiedFailure } from './kafka-errors.js';
import { LaneOwner } from './lanes.js';
import type { RelayMetrics } from './metrics.js';
import { Publisher, type Outgoing } from './publisher.js';
import { claimBatch, deleteDispatched, markDispatched, markFailed, readStats, type ClaimedRow } from './store.js';

export interface RelayDeps {
  pool: Pool;
  kafka: Kafka;
  logger: Logger;
  metrics: RelayMetrics;
  config: RelayConfig;
}

/** Exponential backoff with "equal jitter": half fixed, half random, capped. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

export class OutboxRelay {
  private readonly lanes: LaneOwner;
  private readonly publisher: Publisher;
  private stopping = false;
  private started = false;
  private loopDone: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private infraFailures = 0;
  private timers: NodeJS.Timeout[] = [];
  private statsRunning = false;
  private retentionRunning = false;
  /**
   * The UPDATE marking the last acknowledged batch, run while the next batch is claimed and
   * sent (one in flight at most). Its rows are excluded from claims until it is done.
   */
  private marking: { ids: string[]; done: Promise<void> } | undefined;
  /** Counters for tests and /health. */
  readonly stats = { batches: 0, dispatched: 0, lastBatchAt: undefined as Date | undefined };

  constructor(private readonly deps: RelayDeps) {
    this.lanes = new LaneOwner(deps.config.DATABASE_URL, deps.logger, deps.config.KES_RELAY_LISTEN);
    this.lanes.on('notify', () => this.wake());
    this.lanes.on('lost', () => this.wake());
    this.publisher = new Publisher(deps.kafka, deps.logger, {
      sendTimeoutMs: deps.config.KES_RELAY_SEND_TIMEOUT_MS,
      maxRequestBytes: deps.config.KES_RELAY_MAX_REQUEST_BYTES,
      maxMessageBytes: deps.config.KES_RELAY_MAX_MESSAGE_BYTES,
    });
  }

  async start(): Promise<void> {
    if (this.started) return;
    const { config, metrics, logger } = this.deps;
    metrics.up.set(1);
    await this.publisher.connect();
    await this.lanes.connect();
    this.started = true;
    this.loopDone = this.loop().catch((error) => logger.fatal({ err: error }, 'relay loop crashed'));
    this.every(config.KES_RELAY_STATS_INTERVAL_MS, () => this.refreshStats(), true);
    this.every(config.KES_RELAY_RETENTION_INTERVAL_MS, async () => void (await this.runRetention()), false);
    logger.info({ batchSize: config.KES_RELAY_BATCH_SIZE, listen: config.KES_RELAY_LISTEN }, 'relay started');
  }

  /**
   * Stops claiming, lets the in-flight batch finish (or abandons it after timeoutMs: its rows
   * simply stay pending for the next owner), then releases the lanes and the producer.
   */
  async stop(timeoutMs = this.deps.config.KES_RELAY_SHUTDOWN_TIMEOUT_MS): Promise<{ finishedBatch: boolean }> {
    if (this.stopping) return { finishedBatch: true };
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.wake();
    let finishedBatch = true;
    if (this.loopDone) {
      let timer: NodeJS.Timeout | undefined;
      finishedBatch = await Promise.race([
        this.loopDone.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    if (finishedBatch) await this.marking?.done;
    else this.deps.logger.warn('in-flight batch abandoned at shutdown; its rows stay pending');
    await this.lanes.close();
    await this.publisher.close();
    this.deps.metrics.up.set(0);
    return { finishedBatch };
  }

  healthChecks(): Record<string, () => Promise<unknown>> {
    return {
      postgres: () => pingDatabase(this.deps.pool),
      kafka: () => this.publisher.ping(),
    };
  }

  healthDetails(): Record<string, unknown> {
    return {
      relay: {
        lanes: this.lanes.lanes().length,
        relays: this.lanes.members,
        lockSession: this.lanes.isAlive(),
        dispatched: this.stats.dispatched,
        lastBatchAt: this.stats.lastBatchAt?.toISOString() ?? null,
      },
    };
  }

  private every(ms: number, fn: () => Promise<void>, now: boolean) {
    if (now) void fn();
    const timer = setInterval(() => void fn(), ms);
    timer.unref();
    this.timers.push(timer);
  }

  private wake() {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Sleeps up to ms, or less when a NOTIFY, a lost lock session or stop() arrives. */
  private sleep(ms: number): Promise<void> {
    if (this.woken || this.stopping) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        this.woken = false;
        done();
      };
    });
  }

  private async loop(): Promise<void> {
    const { config, logger, metrics } = this.deps;
    let nextRebalance = 0;
    while (!this.stopping) {
      try {
        if (!this.lanes.isAlive()) {
          metrics.ownedLanes.set(0);
          await this.lanes.close();
          await this.lanes.connect();
          nextRebalance = 0;
        }
        if (Date.now() >= nextRebalance) {
          // A lane must not change hands while its last batch is still being marked.
          await this.marking?.done;
          await this.lanes.rebalance();
          metrics.ownedLanes.set(this.lanes.lanes().length);
          nextRebalance = Date.now() + config.KES_RELAY_REBALANCE_INTERVAL_MS;
        }
        const lanes = this.lanes.lanes();
        if (lanes.length === 0) {
          await this.sleep(Math.min(config.KES_RELAY_POLL_INTERVAL_MS, config.KES_RELAY_REBALANCE_INTERVAL_MS));
          continue;
        }
        const endPoll = metrics.pollDuration.startTimer();
        const rows = await claimBatch(this.deps.pool, lanes, config.KES_RELAY_BATCH_SIZE, this.marking?.ids);
        endPoll();
        if (rows.length === 0) {
          await this.sleep(config.KES_RELAY_POLL_INTERVAL_MS);
          continue;
        }
        metrics.batchSize.observe(rows.length);
        const backoff = await this.processBatch(rows);
        if (backoff > 0) await this.sleep(backoff);
      } catch (error) {
        // Postgres unreachable, lock session dropped mid-query, ...: rows are untouched or
        // pending again, so waiting and retrying is always safe.
        this.infraFailures++;
        const wait = backoffMs(this.infraFailures, config.KES_RELAY_BACKOFF_BASE_MS, config.KES_RELAY_BACKOFF_MAX_MS);
        logger.error({ err: error, retryInMs: wait }, 'relay iteration failed');
        await this.sleep(wait);
      }
    }
  }

  /** Publishes one claimed batch. Returns how long the relay should back off (0 = go on). */
  private async processBatch(rows: ClaimedRow[]): Promise<number> {
    let prepared: Awaited<ReturnType<Publisher['prepare']>>;
    try {
      prepared = await this.publisher.prepare(rows);
    } catch (error) {
      return this.infrastructureBackoff(classifyKafkaError(error));
    }
    // A row that failed blocks the later rows of its aggregate in this batch (strict order).
    const blocked = new Set<string>();
    for (const { row, failure } of prepared.failed) {
      await this.recordFailure(row, failure);
      blocked.add(row.aggregateId);
    }
    const ready = prepared.ready.filter((o) => !blocked.has(o.row.aggregateId));
    if (ready.length === 0) return 0;
    try {
      const acked = await this.publisher.send(ready);
      await this.onAcked(ready, acked);
      this.infraFailures = 0;
      return 0;
    } catch (error) {
      const failure = classifyKafkaError(error);
      if (failure.kind === 'infrastructure') return this.infrastructureBackoff(failure);
      // The request failed because of (at least) one record: find it by sending one by one.
      // Records of the failed request may have landed already; resending them is the
      // at-least-once contract (consumers drop duplicates by ce_id).
      this.deps.logger.warn({ reason: failure.reason, rows: ready.length }, 'batch failed, isolating the failing record');
      for (const item of ready) {
        if (blocked.has(item.row.aggregateId)) continue;
        try {
          const acked = await this.publisher.send([item]);
          await this.onAcked([item], acked);
        } catch (singleError) {
          const single = classifyKafkaError(singleError);
          if (single.kind === 'infrastructure') return this.infrastructureBackoff(single);
          await this.recordFailure(item.row, single);
          blocked.add(item.row.aggregateId);
        }
      }
      return 0;
    }
  }

  /**
   * Records an acknowledged batch. The UPDATE overlaps with the next claim and send; waiting
   * for the previous one first keeps at most one in flight. If it fails, the rows stay pending
   * and are sent again later (a duplicate, never a loss; first occurrences stay in order).
   */
  private async onAcked(items: Outgoing[], acked: { id: string; partition: number; offset: string }[]) {
    const { metrics, pool, logger } = this.deps;
    await this.marking?.done;
    const ackedAt = Date.now();
    const entry: { ids: string[]; done: Promise<void> } = { ids: acked.map((a) => a.id), done: Promise.resolve() };
    entry.done = markDispatched(pool, acked).then(
      () => {
        for (const item of items) {
          metrics.dispatched.inc({ topic: item.topic, event_type: item.row.eventType });
          metrics.lag.observe(Math.max(0, ackedAt - item.row.createdAt.getTime()) / 1000);
        }
        this.stats.batches++;
        this.stats.dispatched += items.length;
        this.stats.lastBatchAt = new Date(ackedAt);
      },
      (error: unknown) => logger.error({ err: error, rows: acked.length }, 'marking acknowledged rows failed; they will be sent again'),
    );
    // Once marked (or failed), the rows need no exclusion: most claims then pass an empty array.
    void entry.done.then(() => (entry.ids = []));
    this.marking = entry;
  }

  private infrastructureBackoff(failure: ClassifiedFailure): number {
    const { config, logger, metrics } = this.deps;
    metrics.failures.inc({ reason: failure.reason });
    this.infraFailures++;
    const wait = backoffMs(this.infraFailures, config.KES_RELAY_BACKOFF_BASE_MS, config.KES_RELAY_BACKOFF_MAX_MS);
    logger.warn({ reason: failure.reason, error: failure.message, retryInMs: wait }, 'Kafka unavailable, backing off');
    return wait;
  }

  private async recordFailure(row: ClaimedRow, failure: ClassifiedFailure): Promise<void> {
    const { config, logger, metrics, pool } = this.deps;
    const attempts = row.attempts + 1;
    const poison = failure.kind === 'fatal' || attempts >= config.KES_RELAY_MAX_ATTEMPTS;
    const error = `${failure.reason}: ${failure.message}`;
    metrics.failures.inc({ reason: failure.reason });
    if (poison) {
      await markFailed(pool, row.id, error, { poison: true });
      metrics.poisoned.inc({ reason: failure.reason });
      logger.error({ outboxId: row.id, eventId: row.eventId, aggregateId: row.aggregateId, attempts, error }, 'outbox row poisoned');
    } else {
      const retryInMs = backoffMs(attempts, config.KES_RELAY_BACKOFF_BASE_MS, config.KES_RELAY_BACKOFF_MAX_MS);
      await markFailed(pool, row.id, error, { poison: false, retryInMs });
      logger.warn({ outboxId: row.id, attempts, retryInMs, error }, 'outbox row failed, will retry');
    }
  }

  async refreshStats(): Promise<void> {
    if (this.statsRunning) return;
    this.statsRunning = true;
    try {
      const s = await readStats(this.deps.pool);
      const m = this.deps.metrics;
      m.pending.set(s.pending);
      m.poison.set(s.poison);
      m.oldestPendingAge.set(s.oldestPendingAgeSeconds);
      m.blockedEvents.set(s.blockedEvents);
      m.blockedAggregates.set(s.blockedAggregates);
    } catch (error) {
      this.deps.logger.debug({ err: error }, 'stats query failed');
    } finally {
      this.statsRunning = false;
    }
  }

  async runRetention(): Promise<number> {
    if (this.retentionRunning) return 0;
    this.retentionRunning = true;
    try {
      const { config } = this.deps;
      const deleted = await deleteDispatched(this.deps.pool, config.KES_RELAY_RETENTION_SECONDS, config.KES_RELAY_RETENTION_BATCH);
      if (deleted) {
        this.deps.metrics.retentionDeleted.inc(deleted);
        this.deps.logger.info({ deleted }, 'retention deleted dispatched rows');
      }
      return deleted;
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'retention failed');
      return 0;
    } finally {
      this.retentionRunning = false;
    }
  }
}
