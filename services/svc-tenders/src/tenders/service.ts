// Tender commands and queries. A command runs on the client of the caller's transaction: it
// locks the tender row, checks the state machine and the caller's rights, changes the domain
// rows and writes exactly one outbox event, all of which commit or roll back together.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import {
  TENDER_AGGREGATE,
  TENDERS_SOURCE,
  TENDERS_TOPIC,
  buildEvent,
  type TenderEventName,
  type TenderEventPayload,
} from '@kvary/contracts/tenders';
import { writeOutboxEvent } from '@kvary/outbox/writer';
import { AppError, badRequest, conflict, forbidden, notFound } from '@kvary/platform/errors';
import type { Queryable } from '@kvary/platform/postgres';
import { decodeCursor, encodeCursor } from './cursor.js';
import * as repo from './repository.js';
import type { BidRow, TenderRow } from './repository.js';
import { toBidDto, toTenderDto, type BidDto, type TenderDto } from './schemas.js';
import { transition } from './state-machine.js';
import type { TenderStatus } from '@kvary/contracts/tenders';

/** Who acts: the verified token's subject and organisation. */
export interface Actor {
  sub: string;
  orgId: string;
}

/** A reader may be anonymous (GUEST): no org. */
export interface Viewer {
  orgId: string | null;
}

/** Request facts that travel with the event as Kafka headers. */
export interface EventContext {
  traceparent: string;
  requestId: string;
}

export interface TenderServiceOptions {
  outboxNotify: boolean;
  now?: () => Date;
  /** Test seam: runs after the domain write, right before the outbox write. */
  beforeOutboxWrite?: (event: TenderEventName) => void | Promise<void>;
}

export interface CreateTenderInput {
  title: string;
  description: string;
  budget: { amount: string; currency: string };
  deadline: string;
}

export type UpdateTenderInput = Partial<CreateTenderInput>;

export class TenderService {
  private readonly now: () => Date;

  constructor(private readonly options: TenderServiceOptions) {
    this.now = options.now ?? (() => new Date());
  }

  async create(client: pg.PoolClient, actor: Actor, input: CreateTenderInput, ctx: EventContext): Promise<TenderDto> {
    this.assertFuture(input.deadline);
    const row = await repo.insertTender(client, { id: randomUUID(), orgId: actor.orgId, createdBy: actor.sub, ...input });
    await this.emit(client, 'created', ctx, {
      ...this.envelope(row, actor),
      title: row.title,
      description: row.description,
      budget: money(row.budget_amount, row.budget_currency),
      deadline: row.deadline.toISOString(),
      status: 'draft',
    });
    return toTenderDto(row);
  }

  async update(client: pg.PoolClient, actor: Actor, id: string, input: UpdateTenderInput, ctx: EventContext): Promise<TenderDto> {
    const current = await this.lockForBuyer(client, actor, id);
    transition(current.status, 'update');
    if (input.deadline !== undefined) this.assertFuture(input.deadline);
    const row = await repo.updateTender(client, id, input);
    const changes: TenderEventPayload<'updated'>['changes'] = {};
    if (input.title !== undefined) changes.title = row.title;
    if (input.description !== undefined) changes.description = row.description;
    if (input.budget !== undefined) changes.budget = money(row.budget_amount, row.budget_currency);
    if (input.deadline !== undefined) changes.deadline = row.deadline.toISOString();
    await this.emit(client, 'updated', ctx, { ...this.envelope(row, actor), changes });
    return toTenderDto(row);
  }

  async publish(client: pg.PoolClient, actor: Actor, id: string, ctx: EventContext): Promise<TenderDto> {
    const current = await this.lockForBuyer(client, actor, id);
    const status = transition(current.status, 'publish');
    if (current.deadline <= this.now()) {
      throw conflict('DEADLINE_PASSED', 'the deadline has passed; move it before publishing');
    }
    const row = await repo.updateTender(client, id, { status, publishedAt: this.now() });
    await this.emit(client, 'published', ctx, {
      ...this.envelope(row, actor),
      title: row.title,
      budget: money(row.budget_amount, row.budget_currency),
      deadline: row.deadline.toISOString(),
      status: 'published',
      publishedAt: iso(row.published_at),
    });
    return toTenderDto(row);
  }

  async submitBid(
    client: pg.PoolClient,
    actor: Actor,
    id: string,
    input: { amount: { amount: string; currency: string }; note: string },
    ctx: EventContext,
  ): Promise<BidDto> {
    const tender = await this.lockVisible(client, actor, id);
    if (tender.org_id === actor.orgId) throw forbidden('the buyer organisation cannot bid on its own tender');
    transition(tender.status, 'submitBid');
    if (tender.deadline <= this.now()) throw conflict('BIDDING_CLOSED', 'the bidding deadline has passed');
    if (input.amount.currency !== tender.budget_currency) {
      throw badRequest('CURRENCY_MISMATCH', `bids on this tender must be in ${tender.budget_currency}`, { field: 'body.amount.currency' });
    }
    // The tender row is locked, so this check cannot race another bid of the same organisation;
    // the unique constraint stays as the last line of defence.
    if (await repo.findBidOfSupplier(client, id, actor.orgId)) {
      throw conflict('BID_ALREADY_SUBMITTED', 'your organisation has already submitted a bid on this tender');
    }
    const bid = await repo.insertBid(client, {
      id: randomUUID(),
      tenderId: id,
      supplierOrgId: actor.orgId,
      submittedBy: actor.sub,
      amount: input.amount,
      note: input.note,
    });
    await this.emit(client, 'bidSubmitted', ctx, {
      ...this.envelope(tender, actor),
      bidId: bid.id,
      supplierOrgId: bid.supplier_org_id,
      amount: money(bid.amount, bid.currency),
    });
    return toBidDto(bid);
  }

  async close(client: pg.PoolClient, actor: Actor, id: string, ctx: EventContext): Promise<TenderDto> {
    const current = await this.lockForBuyer(client, actor, id);
    const status = transition(current.status, 'close');
    const row = await repo.updateTender(client, id, { status, closedAt: this.now() });
    await this.emit(client, 'closed', ctx, {
      ...this.envelope(row, actor),
      status: 'closed',
      closedAt: iso(row.closed_at),
      bidCount: await repo.countBids(client, id),
    });
    return toTenderDto(row);
  }

  async award(client: pg.PoolClient, actor: Actor, id: string, bidId: string, ctx: EventContext): Promise<TenderDto> {
    const current = await this.lockForBuyer(client, actor, id);
    const status = transition(current.status, 'award');
    const bid = await repo.findBid(client, id, bidId);
    if (!bid) {
      throw new AppError('BID_NOT_FOUND', `bid ${bidId} is not a bid on this tender`, { statusCode: 422, details: { field: 'body.bidId' } });
    }
    const row = await repo.updateTender(client, id, { status, awardedBidId: bid.id });
    await this.emit(client, 'awarded', ctx, {
      ...this.envelope(row, actor),
      status: 'awarded',
      awardedBidId: bid.id,
      supplierOrgId: bid.supplier_org_id,
      amount: money(bid.amount, bid.currency),
    });
    return toTenderDto(row);
  }

  async cancel(client: pg.PoolClient, actor: Actor, id: string, reason: string, ctx: EventContext): Promise<TenderDto> {
    const current = await this.lockForBuyer(client, actor, id);
    const status = transition(current.status, 'cancel');
    const row = await repo.updateTender(client, id, { status, cancelReason: reason });
    await this.emit(client, 'cancelled', ctx, {
      ...this.envelope(row, actor),
      status: 'cancelled',
      previousStatus: current.status as 'draft' | 'published' | 'closed',
      reason,
    });
    return toTenderDto(row);
  }

  async get(db: Queryable, viewer: Viewer, id: string): Promise<TenderDto & { bids: BidDto[] }> {
    const row = await repo.findTender(db, id);
    if (!row || !isVisible(row, viewer)) throw notFound('tender');
    let bids: BidRow[] = [];
    if (viewer.orgId === row.org_id) {
      // Sealed bids: the buyer sees them only once the tender has been closed.
      if (row.closed_at) bids = await repo.listBids(db, id);
    } else if (viewer.orgId) {
      bids = await repo.listBids(db, id, viewer.orgId);
    }
    return { ...toTenderDto(row), bids: bids.map(toBidDto) };
  }

  async list(
    db: Queryable,
    viewer: Viewer,
    query: { status?: TenderStatus; limit: number; cursor?: string },
  ): Promise<{ items: TenderDto[]; nextCursor: string | null }> {
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const page = await repo.listTenders(db, { viewerOrgId: viewer.orgId, status: query.status, after, limit: query.limit });
    const last = page.rows.at(-1);
    return {
      items: page.rows.map(toTenderDto),
      nextCursor: page.hasMore && last ? encodeCursor({ createdAt: last.created_at_exact, id: last.id }) : null,
    };
  }

  /** Locks a tender the actor can see (404 otherwise, so drafts of others stay invisible). */
  private async lockVisible(client: pg.PoolClient, actor: Actor, id: string): Promise<TenderRow> {
    const row = await repo.findTender(client, id, { forUpdate: true });
    if (!row || !isVisible(row, actor)) throw notFound('tender');
    return row;
  }

  /** Locks a tender only its buyer organisation may change (403 for other organisations). */
  private async lockForBuyer(client: pg.PoolClient, actor: Actor, id: string): Promise<TenderRow> {
    const row = await this.lockVisible(client, actor, id);
    if (row.org_id !== actor.orgId) throw forbidden('only the buyer organisation can change this tender');
    return row;
  }

  private assertFuture(deadline: string): void {
    if (new Date(deadline) <= this.now()) {
      throw badRequest('DEADLINE_IN_PAST', 'deadline must be in the future', { field: 'body.deadline' });
    }
  }

  private envelope(row: TenderRow, actor: Actor) {
    return { tenderId: row.id, orgId: row.org_id, actorId: actor.sub, occurredAt: this.now().toISOString(), tenderVersion: row.version };
  }

  private async emit<N extends TenderEventName>(client: pg.PoolClient, name: N, ctx: EventContext, payload: TenderEventPayload<N>) {
    await this.options.beforeOutboxWrite?.(name);
    // Validated against the shared contract before it can reach the outbox.
    const event = buildEvent(name, payload);
    return writeOutboxEvent(
      client,
      {
        aggregateType: TENDER_AGGREGATE,
        aggregateId: payload.tenderId,
        eventType: event.eventType,
        eventVersion: event.version,
        topic: TENDERS_TOPIC,
        source: TENDERS_SOURCE,
        payload: event.payload,
        headers: { traceparent: ctx.traceparent, 'x-request-id': ctx.requestId },
      },
      { notify: this.options.outboxNotify },
    );
  }
}

export function isVisible(row: TenderRow, viewer: Viewer): boolean {
  return row.published_at !== null || row.org_id === viewer.orgId;
}

function money(amount: string, currency: string) {
  return { amount, currency };
}

function iso(value: Date | null): string {
  if (!value) throw new Error('expected a timestamp');
  return value.toISOString();
}
