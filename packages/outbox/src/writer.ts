// The outbox writer: services call it inside the transaction that changes their domain rows,
// so the event row exists if and only if the domain change committed. Domain-free.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { isInTransaction } from '@kvary/platform/postgres';

export const OUTBOX_TABLE = 'kes_outbox_events';
export const OUTBOX_CHANNEL = 'kes_outbox';

export interface OutboxEventInput {
  /** Becomes the CloudEvents `ce_id`; generated when absent. */
  eventId?: string;
  aggregateType: string;
  aggregateId: string;
  /** Fully qualified type without version, e.g. `kvary.tenders.tender.published`. */
  eventType: string;
  eventVersion: number;
  topic: string;
  /** CloudEvents `ce_source`, e.g. `/kvary/svc-tenders`. */
  source: string;
  payload: unknown;
  /** Extra Kafka headers to carry (traceparent, x-request-id). */
  headers?: Record<string, string>;
}

export interface WrittenEvent {
  id: string;
  eventId: string;
}

export interface WriterOptions {
  /**
   * Issue NOTIFY so an idle relay wakes at once. NOTIFY takes a cluster-wide lock at commit,
   * so very write-heavy deployments may turn it off and rely on the relay's polling.
   */
  notify?: boolean;
}

export class OutboxWriterError extends Error {
  override name = 'OutboxWriterError';
}

/**
 * Inserts one outbox row on the transaction's client.
 *
 * Per-aggregate order: the row's id must follow commit order within one aggregate, or a relay
 * could publish a later-allocated, earlier-committed event first. The transaction-scoped
 * advisory lock on the aggregate serialises writers of one aggregate until commit, so the
 * id allocated after taking it is larger than every id of that aggregate already committed.
 */
export async function writeOutboxEvent(
  client: pg.PoolClient,
  event: OutboxEventInput,
  options: WriterOptions = {},
): Promise<WrittenEvent> {
  if (!isInTransaction(client)) {
    throw new OutboxWriterError('writeOutboxEvent needs the client of an open transaction (use withTransaction)');
  }
  if (!Number.isInteger(event.eventVersion) || event.eventVersion < 1) {
    throw new OutboxWriterError(`eventVersion must be a positive integer, got ${event.eventVersion}`);
  }
  const eventId = event.eventId ?? randomUUID();
  const notify = options.notify ?? true;
  const { rows } = await client.query<{ id: string }>({
    name: notify ? 'kes_outbox_insert_notify' : 'kes_outbox_insert',
    text: `
      WITH aggregate_lock AS (
        SELECT pg_advisory_xact_lock(hashtextextended($2 || ':' || $3, 7242))
      ), inserted AS (
        INSERT INTO ${OUTBOX_TABLE}
          (event_id, aggregate_type, aggregate_id, event_type, event_version, topic, source, payload, headers)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 FROM aggregate_lock
        RETURNING id
      )
      SELECT id${notify ? `, pg_notify('${OUTBOX_CHANNEL}', '')` : ''} FROM inserted`,
    values: [
      eventId,
      event.aggregateType,
      event.aggregateId,
      event.eventType,
      event.eventVersion,
      event.topic,
      event.source,
      JSON.stringify(event.payload),
      JSON.stringify(event.headers ?? {}),
    ],
  });
  const id = rows[0]?.id;
  if (id === undefined) throw new OutboxWriterError('outbox insert returned no row');
  return { id: String(id), eventId };
}
