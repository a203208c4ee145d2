// Prometheus metrics of the workspace consumer and of the replay tools. The tools are short-lived
// processes nobody scrapes, so their effect is read back from the audit tables on each scrape.
import { counter, gauge, type Registry } from '@kvary/platform/metrics';
import type { Queryable } from '@kvary/platform/postgres';

export interface ConsumerMetrics {
  processed: (result: 'applied' | 'duplicate') => void;
  dlq: (reason: string) => void;
  retried: () => void;
  lag: (partition: number, value: number) => void;
  clearLag: () => void;
}

export function createConsumerMetrics(registry: Registry): ConsumerMetrics {
  const processed = counter(registry, {
    name: 'kes_consumer_processed_total',
    help: 'KES events handled by the workspace consumer, by result (applied, duplicate)',
    labelNames: ['result'],
  });
  const dlq = counter(registry, {
    name: 'kes_consumer_dlq_total',
    help: 'Messages the workspace consumer sent to the dead-letter topic, by reason',
    labelNames: ['reason'],
  });
  const retries = counter(registry, {
    name: 'kes_consumer_retries_total',
    help: 'In-process retries of a failed projection transaction',
  });
  const lag = gauge(registry, {
    name: 'kes_consumer_lag',
    help: 'High-water mark minus committed offset of the workspace consumer group, by partition',
    labelNames: ['partition'],
  });
  // Zero the label sets up front so dashboards and alerts see 0 rather than "no data".
  processed.inc({ result: 'applied' }, 0);
  processed.inc({ result: 'duplicate' }, 0);
  return {
    processed: (result) => processed.inc({ result }),
    dlq: (reason) => dlq.inc({ reason }),
    retried: () => retries.inc(),
    lag: (partition, value) => lag.set({ partition: String(partition) }, value),
    clearLag: () => lag.reset(),
  };
}

/**
 * `kes_replays_recorded{tool}` (audit rows) and `kes_replay_dlq_total{mode}` /
 * `kes_replay_outbox_poison_total{mode}` (replayed items; mode="execute", dry runs leave no
 * trace by design), read from the audit tables when /metrics is scraped.
 */
export function registerReplayMetrics(registry: Registry, db: Queryable): void {
  let last: { dlq: number; poison: number } | undefined;
  let pending: Promise<{ dlq: number; poison: number } | undefined> | undefined;
  // One query per scrape, shared by the three metrics below.
  const read = () => {
    pending ??= db
      .query<{ dlq: number; poison: number }>(
        'SELECT (SELECT count(*) FROM kes_dlq_replays)::int AS dlq, (SELECT count(*) FROM kes_outbox_replays)::int AS poison',
      )
      .then((r) => (last = r.rows[0]))
      // A scrape while Postgres is down keeps the last known values instead of failing.
      .catch(() => last)
      .finally(() => {
        setTimeout(() => (pending = undefined), 100).unref();
      });
    return pending;
  };

  gauge(registry, {
    name: 'kes_replays_recorded',
    help: 'Replay audit rows recorded by the operator tools, by tool',
    labelNames: ['tool'],
    async collect() {
      const counts = await read();
      if (!counts) return;
      this.set({ tool: 'replay:kes-dlq' }, counts.dlq);
      this.set({ tool: 'replay:kes-outbox-poison' }, counts.poison);
    },
  });

  // Counters only go up: they follow the audit row counts (which only grow) by increments.
  const seen = { dlq: 0, poison: 0 };
  counter(registry, {
    name: 'kes_replay_dlq_total',
    help: 'DLQ messages re-published by replay:kes-dlq, by mode (from the kes_dlq_replays audit)',
    labelNames: ['mode'],
    async collect() {
      const counts = await read();
      if (counts && counts.dlq > seen.dlq) {
        this.inc({ mode: 'execute' }, counts.dlq - seen.dlq);
        seen.dlq = counts.dlq;
      } else this.inc({ mode: 'execute' }, 0);
    },
  });
  counter(registry, {
    name: 'kes_replay_outbox_poison_total',
    help: 'Poison outbox rows put back to pending by replay:kes-outbox-poison, by mode (from kes_outbox_replays)',
    labelNames: ['mode'],
    async collect() {
      const counts = await read();
      if (counts && counts.poison > seen.poison) {
        this.inc({ mode: 'execute' }, counts.poison - seen.poison);
        seen.poison = counts.poison;
      } else this.inc({ mode: 'execute' }, 0);
    },
  });
}
