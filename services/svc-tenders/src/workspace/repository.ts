// SQL of the workspace projection: the consumer inbox, the projection writes (inside the
// consumer's transaction) and the reads behind GET /api/v1/workspace.
import { TENDER_STATUSES, type TenderStatus } from '@kvary/contracts/tenders';
import type { Queryable } from '@kvary/platform/postgres';
import { deleteOlderThan } from '@kvary/platform/postgres';

export interface InboxEntry {
  consumerGroup: string;
  eventId: string;
  ceType: string;
  topic: string;
  partition: number;
  offset: string;
}

/** Records the event as applied; false when this group already applied it (a redelivery). */
export async function insertInbox(db: Queryable, entry: InboxEntry): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO kes_consumer_inbox (consumer_group, event_id, ce_type, topic, kafka_partition, kafka_offset)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (consumer_group, event_id) DO NOTHING`,
    [entry.consumerGroup, entry.eventId, entry.ceType, entry.topic, entry.partition, entry.offset],
  );
  return (rowCount ?? 0) === 1;
}

export interface TenderState {
  tenderId: string;
  orgId: string;
  status: TenderStatus;
  /** undefined: this event does not carry the title. */
  title: string | undefined;
  tenderVersion: number;
  occurredAt: string;
}

/**
 * Creates or advances the tender's row and returns its title. An event with an older tender
 * version than the row (a late replay from the DLQ) never moves the status back; a bid
 * (same version as the publish) keeps it.
 */
export async function upsertTender(db: Queryable, t: TenderState): Promise<string | null> {
  const { rows } = await db.query<{ title: string | null }>(
    `INSERT INTO workspace_tenders AS w (tender_id, org_id, status, title, tender_version, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (tender_id) DO UPDATE SET
       status = CASE WHEN EXCLUDED.tender_version >= w.tender_version THEN EXCLUDED.status ELSE w.status END,
       title = CASE WHEN EXCLUDED.title IS NOT NULL AND EXCLUDED.tender_version >= w.tender_version
                    THEN EXCLUDED.title ELSE COALESCE(w.title, EXCLUDED.title) END,
       tender_version = GREATEST(w.tender_version, EXCLUDED.tender_version),
       updated_at = GREATEST(w.updated_at, EXCLUDED.updated_at)
     RETURNING title`,
    [t.tenderId, t.orgId, t.status, t.title ?? null, t.tenderVersion, t.occurredAt],
  );
  return rows[0]?.title ?? null;
}

export async function linkOrg(db: Queryable, orgId: string, tenderId: string, role: 'buyer' | 'supplier'): Promise<void> {
  await db.query(
    `INSERT INTO workspace_tender_orgs (org_id, tender_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
    [orgId, tenderId, role],
  );
}

export async function linkUser(db: Queryable, userId: string, tenderId: string, orgId: string): Promise<void> {
  await db.query(
    `INSERT INTO workspace_tender_users (user_id, tender_id, org_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
    [userId, tenderId, orgId],
  );
}

export interface ActivityRow {
  orgId: string;
  /** '' when the actor must not be shown to this organisation (a sealed bid seen by the buyer). */
  userId: string;
  eventId: string;
  ceType: string;
  tenderId: string;
  title: string | null;
  summary: string;
  occurredAt: string;
}

export async function insertActivity(db: Queryable, a: ActivityRow): Promise<void> {
  await db.query(
    `INSERT INTO workspace_activity (org_id, user_id, event_id, ce_type, tender_id, title, summary, occurred_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (event_id, org_id) DO NOTHING`,
    [a.orgId, a.userId, a.eventId, a.ceType, a.tenderId, a.title, a.summary, a.occurredAt],
  );
}

export type StatusCounts = Record<TenderStatus, number>;

function toCounts(rows: { status: string; n: number }[]): StatusCounts {
  const counts = Object.fromEntries(TENDER_STATUSES.map((s) => [s, 0])) as StatusCounts;
  for (const r of rows) if (r.status in counts) counts[r.status as TenderStatus] = r.n;
  return counts;
}

export async function orgTenderCounts(db: Queryable, orgId: string): Promise<StatusCounts> {
  const { rows } = await db.query<{ status: string; n: number }>(
    `SELECT t.status, count(*)::int AS n FROM workspace_tender_orgs o JOIN workspace_tenders t USING (tender_id)
     WHERE o.org_id = $1 GROUP BY t.status`,
    [orgId],
  );
  return toCounts(rows);
}

export async function userTenderCounts(db: Queryable, userId: string): Promise<StatusCounts> {
  const { rows } = await db.query<{ status: string; n: number }>(
    `SELECT t.status, count(*)::int AS n FROM workspace_tender_users u JOIN workspace_tenders t USING (tender_id)
     WHERE u.user_id = $1 GROUP BY t.status`,
    [userId],
  );
  return toCounts(rows);
}

export interface ActivityItem {
  eventId: string;
  type: string;
  tenderId: string;
  title: string | null;
  summary: string;
  actorId: string | null;
  occurredAt: string;
}

const ACTIVITY_COLUMNS = `event_id::text AS "eventId", ce_type AS type, tender_id::text AS "tenderId", title, summary,
  NULLIF(user_id, '') AS "actorId", to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "occurredAt"`;

export async function orgActivity(db: Queryable, orgId: string, limit: number): Promise<ActivityItem[]> {
  const { rows } = await db.query<ActivityItem>(
    `SELECT ${ACTIVITY_COLUMNS} FROM workspace_activity WHERE org_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT $2`,
    [orgId, limit],
  );
  return rows;
}

export async function userActivity(db: Queryable, userId: string, limit: number): Promise<ActivityItem[]> {
  // A user's event can have rows in two organisations (a bid): show it once.
  const { rows } = await db.query<ActivityItem>(
    `SELECT ${ACTIVITY_COLUMNS} FROM (
       SELECT DISTINCT ON (event_id) * FROM workspace_activity WHERE user_id = $1 ORDER BY event_id, id
     ) a ORDER BY occurred_at DESC, id DESC LIMIT $2`,
    [userId, limit],
  );
  return rows;
}

/** Deletes inbox rows older than the retention in batches (short transactions, no long locks). */
export function purgeInbox(db: Queryable, retentionHours: number, batchSize = 1000): Promise<number> {
  return deleteOlderThan(db, 'kes_consumer_inbox', 'processed_at', retentionHours, batchSize);
}

/** Keeps the newest `keep` activity rows per organisation, deleting older ones in batches. */
export async function trimActivity(db: Queryable, keep: number, batchSize = 1000): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `DELETE FROM workspace_activity WHERE id IN (
         SELECT id FROM (
           SELECT id, row_number() OVER (PARTITION BY org_id ORDER BY occurred_at DESC, id DESC) AS rn
           FROM workspace_activity
         ) ranked WHERE rn > $1 LIMIT $2)`,
      [keep, batchSize],
    );
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < batchSize) return total;
  }
}
