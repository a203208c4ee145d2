// Applies one validated KES tender event to the workspace projection, exactly once in effect:
// the inbox row and the projection change commit in one transaction.
import { withTransaction, type Pool, type PoolClient } from '@kvary/platform/postgres';
import { parseEvent, type CeType, type EventPayload, type TenderStatus } from '@kvary/contracts/tenders';
import { insertActivity, insertInbox, linkOrg, linkUser, upsertTender, type ActivityRow } from './repository.js';

export interface IncomingEvent {
  eventId: string;
  ceType: string;
  topic: string;
  partition: number;
  offset: string;
  data: unknown;
}

export type ApplyResult = 'applied' | 'duplicate';

export interface ProjectorOptions {
  consumerGroup: string;
  /** Test seam: runs inside the transaction before the projection write (throw to fail it). */
  beforeApply?: (event: IncomingEvent) => void | Promise<void>;
}

type AnyPayload = EventPayload<CeType>;

/** Validates the payload (throws UnknownEventTypeError / ContractViolationError: not retriable). */
export function validate(event: IncomingEvent): AnyPayload {
  return parseEvent(event.ceType, event.data);
}

export async function applyEvent(pool: Pool, options: ProjectorOptions, event: IncomingEvent, payload: AnyPayload): Promise<ApplyResult> {
  return withTransaction(pool, async (client) => {
    const fresh = await insertInbox(client, { consumerGroup: options.consumerGroup, ...event });
    if (!fresh) return 'duplicate';
    await options.beforeApply?.(event);
    await project(client, event, payload);
    return 'applied';
  });
}

const money = (m: { amount: string; currency: string }) => `${m.amount} ${m.currency}`;

async function project(client: PoolClient, event: IncomingEvent, p: AnyPayload): Promise<void> {
  const base = { eventId: event.eventId, ceType: event.ceType, tenderId: p.tenderId, occurredAt: p.occurredAt };
  let status: TenderStatus;
  let title: string | undefined;
  // Summaries per organisation that sees the event; the supplier side only for bids and awards.
  let buyerSummary: string;
  let supplier: { orgId: string; summary: string } | undefined;
  let actorOrg = p.orgId;
  let buyerSeesActor = true;

  if ('bidId' in p) {
    status = 'published';
    // Sealed bids: the buyer learns that a bid arrived, not who bid or how much.
    buyerSummary = 'A sealed bid was received';
    buyerSeesActor = false;
    supplier = { orgId: p.supplierOrgId, summary: `Bid submitted: ${money(p.amount)}` };
    actorOrg = p.supplierOrgId;
  } else if ('changes' in p) {
    status = 'draft';
    title = p.changes.title;
    buyerSummary = `Draft updated (${Object.keys(p.changes).join(', ')})`;
  } else if ('awardedBidId' in p) {
    status = 'awarded';
    buyerSummary = `Awarded to ${p.supplierOrgId} for ${money(p.amount)}`;
    supplier = { orgId: p.supplierOrgId, summary: `Tender won: ${money(p.amount)}` };
  } else if ('publishedAt' in p) {
    status = 'published';
    title = p.title;
    buyerSummary = 'Tender published';
  } else if ('closedAt' in p) {
    status = 'closed';
    buyerSummary = `Bidding closed with ${p.bidCount} bid(s)`;
  } else if ('previousStatus' in p) {
    status = 'cancelled';
    buyerSummary = `Tender cancelled: ${p.reason}`;
  } else {
    status = 'draft';
    title = p.title;
    buyerSummary = 'Draft created';
  }

  const currentTitle = await upsertTender(client, {
    tenderId: p.tenderId,
    orgId: p.orgId,
    status,
    title,
    tenderVersion: p.tenderVersion,
    occurredAt: p.occurredAt,
  });
  await linkOrg(client, p.orgId, p.tenderId, 'buyer');
  await linkUser(client, p.actorId, p.tenderId, actorOrg);
  const activity: ActivityRow[] = [
    { ...base, orgId: p.orgId, userId: buyerSeesActor ? p.actorId : '', title: currentTitle, summary: buyerSummary },
  ];
  if (supplier) {
    await linkOrg(client, supplier.orgId, p.tenderId, 'supplier');
    activity.push({ ...base, orgId: supplier.orgId, userId: actorOrg === supplier.orgId ? p.actorId : '', title: currentTitle, summary: supplier.summary });
  }
  for (const row of activity) await insertActivity(client, row);
}
