// SQL of the relay. Every statement is parameterised; the table name is a constant.
import type { Pool } from '@kvary/platform/postgres';
import { OUTBOX_TABLE } from '@kvary/outbox/writer';

export interface ClaimedRow {
  id: string;
  eventId: string;
  aggregateType: string;
  aggregateId: string;
  eventType: string;
  eventVersion: number;
  topic: string;
  source: string;
  /** The JSON text as stored: published as is, never re-serialised. */
  payload: string;
  headers: Record<string, string>;
  attempts: number;
  createdAt: Date;
}

/**
 * Pending rows of the given lanes, oldest first, skipping every row that has an earlier
 * unfinished row of its aggregate that cannot go now (poison, or waiting for its retry
 * time): strict per-aggregate order. Earlier rows that CAN go are in the same result, ahead.
 * No row locks: the lanes are this relay's alone (see lanes.ts). `excludeIds` are rows already
 * acknowledged by Kafka whose UPDATE to dispatched is still running (see relay.ts).
 */
export async function claimBatch(pool: Pool, lanes: number[], limit: number, excludeIds: string[] = []): Promise<ClaimedRow[]> {
  const { rows } = await pool.query({
    name: 'kes_relay_claim',
    text: `
      SELECT o.id, o.event_id, o.aggregate_type, o.aggregate_id, o.event_type, o.event_version,
             o.topic, o.source, o.payload::text AS payload, o.headers, o.attempts, o.created_at
        FROM ${OUTBOX_TABLE} o
       WHERE o.status = 'pending'
         AND o.lane = ANY($1::smallint[])
         AND NOT (o.id = ANY($3::bigint[]))
         AND o.next_attempt_at <= clock_timestamp()
         AND NOT EXISTS (
               -- Written to match kes_outbox_events_blocking_idx: only poison rows and rows
               -- that failed before can block; fresh rows are due at insert.
               SELECT 1 FROM ${OUTBOX_TABLE} e
                WHERE e.aggregate_id = o.aggregate_id
                  AND e.id < o.id
                  AND (e.status = 'poison' OR (e.status = 'pending' AND e.attempts > 0))
                  AND (e.status = 'poison' OR e.next_attempt_at > clock_timestamp()))
       ORDER BY o.id
       LIMIT $2`,
    values: [lanes, limit, excludeIds],
  });
  return rows.map((r) => ({
    id: String(r.id),
    eventId: r.event_id,
    aggregateType: r.aggregate_type,
    aggregateId: r.aggregate_id,
    eventType: r.event_type,
    eventVersion: r.event_version,
    topic: r.topic,
    source: r.source,
    payload: r.payload,
    headers: r.headers ?? {},
    attempts: r.attempts,
    createdAt: r.created_at,
  }));
}

export interface Acked {
  id: string;
  partition: number;
  offset: string;
}

/** Marks rows dispatched after the broker acknowledged them (status guard: only pending). */
export async function markDispatched(pool: Pool, acked: Acked[]): Promise<number> {
  if (acked.length === 0) return 0;
  const res = await pool.query({
    name: 'kes_relay_mark',
    text: `
      UPDATE ${OUTBOX_TABLE} o
         SET status = 'dispatched', dispatched_at = clock_timestamp(), attempts = o.attempts + 1,
             last_error = NULL, kafka_partition = v.p, kafka_offset = v.off
        FROM unnest($1::bigint[], $2::int[], $3::bigint[]) AS v(id, p, off)
       WHERE o.id = v.id AND o.status = 'pending'`,
    values: [acked.map((a) => a.id), acked.map((a) => a.partition), acked.map((a) => a.offset)],
  });
  return res.rowCount ?? 0;
}

/** Records a failed attempt: either a retry time with backoff, or poison. */
export async function markFailed(
  pool: Pool,
  id: string,
  error: string,
  outcome: { poison: true } | { poison: false; retryInMs: number },
): Promise<void> {
  await pool.query({
    name: 'kes_relay_fail',
    text: `
      UPDATE ${OUTBOX_TABLE}
         SET attempts = attempts + 1, last_error = $2,
             status = CASE WHEN $3::boolean THEN 'poison' ELSE 'pending' END,
             next_attempt_at = clock_timestamp() + make_interval(secs => $4::double precision / 1000)
       WHERE id = $1 AND status = 'pending'`,
    values: [id, error.slice(0, 4000), outcome.poison, outcome.poison ? 0 : outcome.retryInMs],
  });
}

export interface OutboxStats {
  pending: number;
  poison: number;
  oldestPendingAgeSeconds: number;
  blockedEvents: number;
  blockedAggregates: number;
}

export async function readStats(pool: Pool): Promise<OutboxStats> {
  const { rows } = await pool.query({
    name: 'kes_relay_stats',
    text: `
      SELECT
        (SELECT count(*) FROM ${OUTBOX_TABLE} WHERE status = 'pending')::bigint AS pending,
        (SELECT count(*) FROM ${OUTBOX_TABLE} WHERE status = 'poison')::bigint AS poison,
        (SELECT COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - created_at), 0)
           FROM ${OUTBOX_TABLE} WHERE status = 'pending' ORDER BY id LIMIT 1) AS oldest_age,
        b.blocked_events, b.blocked_aggregates
      FROM (
        SELECT count(*)::bigint AS blocked_events, count(DISTINCT o.aggregate_id)::bigint AS blocked_aggregates
          FROM (SELECT aggregate_id, min(id) AS first_poison FROM ${OUTBOX_TABLE}
                 WHERE status = 'poison' GROUP BY aggregate_id) p
          JOIN ${OUTBOX_TABLE} o ON o.aggregate_id = p.aggregate_id AND o.id > p.first_poison AND o.status = 'pending'
      ) b`,
  });
  const r = rows[0] ?? {};
  return {
    pending: Number(r.pending ?? 0),
    poison: Number(r.poison ?? 0),
    oldestPendingAgeSeconds: Number(r.oldest_age ?? 0),
    blockedEvents: Number(r.blocked_events ?? 0),
    blockedAggregates: Number(r.blocked_aggregates ?? 0),
  };
}

/**
 * Deletes dispatched rows older than maxAgeSeconds, batchSize at a time, at most maxBatches
 * batches per call, so retention never holds long locks or bloats one transaction.
 */
export async function deleteDispatched(pool: Pool, maxAgeSeconds: number, batchSize: number, maxBatches = 20): Promise<number> {
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const res = await pool.query({
      name: 'kes_relay_retention',
      text: `
        DELETE FROM ${OUTBOX_TABLE} WHERE id IN (
          SELECT id FROM ${OUTBOX_TABLE}
           WHERE status = 'dispatched' AND dispatched_at < clock_timestamp() - make_interval(secs => $1)
           ORDER BY id LIMIT $2
           FOR UPDATE SKIP LOCKED)`,
      values: [maxAgeSeconds, batchSize],
    });
    const n = res.rowCount ?? 0;
    total += n;
    if (n < batchSize) break;
  }
  return total;
}
