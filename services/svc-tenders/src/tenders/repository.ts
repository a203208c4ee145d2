// Tender and bid SQL. Every function takes the caller's client so the caller owns the
// transaction (and the outbox write that must commit with it).
import type { Money, TenderStatus } from '@kvary/contracts/tenders';
import type { Queryable } from '@kvary/platform/postgres';

export interface TenderRow {
  id: string;
  org_id: string;
  title: string;
  description: string;
  budget_amount: string;
  budget_currency: string;
  deadline: Date;
  status: TenderStatus;
  awarded_bid_id: string | null;
  published_at: Date | null;
  closed_at: Date | null;
  cancel_reason: string | null;
  version: number;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  /** created_at to the microsecond (a JS Date keeps milliseconds only), for the cursor. */
  created_at_exact: string;
}

export interface BidRow {
  id: string;
  tender_id: string;
  supplier_org_id: string;
  submitted_by: string;
  amount: string;
  currency: string;
  note: string;
  created_at: Date;
}

const TENDER_COLUMNS = `id, org_id, title, description, budget_amount::text AS budget_amount, budget_currency, deadline, status,
  awarded_bid_id, published_at, closed_at, cancel_reason, version, created_by, created_at, updated_at,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at_exact`;
const BID_COLUMNS = 'id, tender_id, supplier_org_id, submitted_by, amount::text AS amount, currency, note, created_at';

export interface NewTender {
  id: string;
  orgId: string;
  title: string;
  description: string;
  budget: Money;
  deadline: string;
  createdBy: string;
}

export async function insertTender(db: Queryable, t: NewTender): Promise<TenderRow> {
  const { rows } = await db.query<TenderRow>(
    `INSERT INTO tenders (id, org_id, title, description, budget_amount, budget_currency, deadline, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${TENDER_COLUMNS}`,
    [t.id, t.orgId, t.title, t.description, t.budget.amount, t.budget.currency, t.deadline, t.createdBy],
  );
  return rows[0] as TenderRow;
}

/**
 * Reads a tender, locking it FOR UPDATE when asked: every command on one tender locks its row
 * first, so commands on one aggregate run one after another and their outbox rows are
 * allocated in commit order.
 */
export async function findTender(db: Queryable, id: string, options: { forUpdate?: boolean } = {}): Promise<TenderRow | undefined> {
  const { rows } = await db.query<TenderRow>(
    `SELECT ${TENDER_COLUMNS} FROM tenders WHERE id = $1${options.forUpdate ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return rows[0];
}

export interface TenderChanges {
  title?: string;
  description?: string;
  budget?: Money;
  deadline?: string;
  status?: TenderStatus;
  awardedBidId?: string;
  publishedAt?: Date;
  closedAt?: Date;
  cancelReason?: string;
}

/** Applies the changes, bumps the version and returns the new row. */
export async function updateTender(db: Queryable, id: string, changes: TenderChanges): Promise<TenderRow> {
  // Column names come from this fixed map, never from input.
  const columns: [string, unknown][] = [];
  if (changes.title !== undefined) columns.push(['title', changes.title]);
  if (changes.description !== undefined) columns.push(['description', changes.description]);
  if (changes.budget !== undefined) columns.push(['budget_amount', changes.budget.amount], ['budget_currency', changes.budget.currency]);
  if (changes.deadline !== undefined) columns.push(['deadline', changes.deadline]);
  if (changes.status !== undefined) columns.push(['status', changes.status]);
  if (changes.awardedBidId !== undefined) columns.push(['awarded_bid_id', changes.awardedBidId]);
  if (changes.publishedAt !== undefined) columns.push(['published_at', changes.publishedAt]);
  if (changes.closedAt !== undefined) columns.push(['closed_at', changes.closedAt]);
  if (changes.cancelReason !== undefined) columns.push(['cancel_reason', changes.cancelReason]);
  const sets = columns.map(([column], i) => `${column} = $${i + 2}`);
  const { rows } = await db.query<TenderRow>(
    `UPDATE tenders SET ${[...sets, 'version = version + 1', 'updated_at = clock_timestamp()'].join(', ')}
     WHERE id = $1 RETURNING ${TENDER_COLUMNS}`,
    [id, ...columns.map(([, value]) => value)],
  );
  const row = rows[0];
  if (!row) throw new Error(`tender ${id} vanished while locked`);
  return row;
}

export interface TenderPage {
  rows: TenderRow[];
  hasMore: boolean;
}

/**
 * Newest first, keyset-paginated on (created_at, id). Only tenders the caller may see: every
 * tender that was ever published, plus the caller's organisation's own.
 */
export async function listTenders(
  db: Queryable,
  filter: { viewerOrgId: string | null; status?: TenderStatus; after?: { createdAt: string; id: string }; limit: number },
): Promise<TenderPage> {
  const values: unknown[] = [filter.viewerOrgId];
  const where = ['(published_at IS NOT NULL OR org_id = $1)'];
  if (filter.status) {
    values.push(filter.status);
    where.push(`status = $${values.length}`);
  }
  if (filter.after) {
    values.push(filter.after.createdAt, filter.after.id);
    where.push(`(created_at, id) < ($${values.length - 1}::timestamptz, $${values.length}::uuid)`);
  }
  values.push(filter.limit + 1);
  const { rows } = await db.query<TenderRow>(
    `SELECT ${TENDER_COLUMNS} FROM tenders WHERE ${where.join(' AND ')}
     ORDER BY created_at DESC, id DESC LIMIT $${values.length}`,
    values,
  );
  return { rows: rows.slice(0, filter.limit), hasMore: rows.length > filter.limit };
}

export async function insertBid(
  db: Queryable,
  bid: { id: string; tenderId: string; supplierOrgId: string; submittedBy: string; amount: Money; note: string },
): Promise<BidRow> {
  const { rows } = await db.query<BidRow>(
    `INSERT INTO bids (id, tender_id, supplier_org_id, submitted_by, amount, currency, note)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${BID_COLUMNS}`,
    [bid.id, bid.tenderId, bid.supplierOrgId, bid.submittedBy, bid.amount.amount, bid.amount.currency, bid.note],
  );
  return rows[0] as BidRow;
}

export async function findBid(db: Queryable, tenderId: string, bidId: string): Promise<BidRow | undefined> {
  const { rows } = await db.query<BidRow>(`SELECT ${BID_COLUMNS} FROM bids WHERE tender_id = $1 AND id = $2`, [tenderId, bidId]);
  return rows[0];
}

export async function findBidOfSupplier(db: Queryable, tenderId: string, supplierOrgId: string): Promise<BidRow | undefined> {
  const { rows } = await db.query<BidRow>(`SELECT ${BID_COLUMNS} FROM bids WHERE tender_id = $1 AND supplier_org_id = $2`, [
    tenderId,
    supplierOrgId,
  ]);
  return rows[0];
}

/** Bids of a tender, all of them or only one supplier organisation's. */
export async function listBids(db: Queryable, tenderId: string, onlySupplierOrgId?: string): Promise<BidRow[]> {
  const { rows } = await db.query<BidRow>(
    `SELECT ${BID_COLUMNS} FROM bids WHERE tender_id = $1 AND ($2::text IS NULL OR supplier_org_id = $2)
     ORDER BY created_at, id`,
    [tenderId, onlySupplierOrgId ?? null],
  );
  return rows;
}

export async function countBids(db: Queryable, tenderId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM bids WHERE tender_id = $1', [tenderId]);
  return rows[0]?.n ?? 0;
}
