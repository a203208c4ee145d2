// KES tender event contracts: one zod schema and one version per event type. Producers validate
// before writing the outbox row; consumers parse with parseEvent and dead-letter what fails.
import { z } from 'zod';

export const TENDERS_TOPIC = 'kes.tenders.v1';
export const TENDERS_DLQ_TOPIC = 'kes.tenders.v1.dlq';
export const TENDERS_SOURCE = '/kvary/svc-tenders';
/** Every tender event (bids included) is keyed by the tender id, so one tender's events stay in order. */
export const TENDER_AGGREGATE = 'tender';

export const TENDER_STATUSES = ['draft', 'published', 'closed', 'awarded', 'cancelled'] as const;
export const tenderStatusSchema = z.enum(TENDER_STATUSES);
export type TenderStatus = z.infer<typeof tenderStatusSchema>;

/** Money is a decimal string (two decimals at most), never a float. */
export const moneySchema = z
  .object({
    amount: z.string().regex(/^\d{1,13}(\.\d{1,2})?$/, 'a decimal string with up to 2 decimals, e.g. "12500.00"'),
    currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code, e.g. "GEL"'),
  })
  .strict();
export type Money = z.infer<typeof moneySchema>;

const isoDateTime = z.iso.datetime({ offset: true });

/** Fields every tender event carries. `orgId` is the buyer organisation. */
const envelope = {
  tenderId: z.uuid(),
  orgId: z.string().min(1),
  actorId: z.string().min(1),
  occurredAt: isoDateTime,
  /** The tender row version after the change (unchanged by a bid). */
  tenderVersion: z.number().int().positive(),
};

export const tenderCreatedV1 = z
  .object({
    ...envelope,
    title: z.string().min(1),
    description: z.string(),
    budget: moneySchema,
    deadline: isoDateTime,
    status: z.literal('draft'),
  })
  .strict();

export const tenderUpdatedV1 = z
  .object({
    ...envelope,
    /** The fields the update set, with their new values. */
    changes: z
      .object({
        title: z.string().min(1).optional(),
        description: z.string().optional(),
        budget: moneySchema.optional(),
        deadline: isoDateTime.optional(),
      })
      .strict()
      .refine((c) => Object.keys(c).length > 0, 'at least one change'),
  })
  .strict();

export const tenderPublishedV1 = z
  .object({
    ...envelope,
    title: z.string().min(1),
    budget: moneySchema,
    deadline: isoDateTime,
    status: z.literal('published'),
    publishedAt: isoDateTime,
  })
  .strict();

export const tenderBidSubmittedV1 = z
  .object({
    ...envelope,
    bidId: z.uuid(),
    supplierOrgId: z.string().min(1),
    amount: moneySchema,
  })
  .strict();

export const tenderClosedV1 = z
  .object({
    ...envelope,
    status: z.literal('closed'),
    closedAt: isoDateTime,
    bidCount: z.number().int().nonnegative(),
  })
  .strict();

export const tenderAwardedV1 = z
  .object({
    ...envelope,
    status: z.literal('awarded'),
    awardedBidId: z.uuid(),
    supplierOrgId: z.string().min(1),
    amount: moneySchema,
  })
  .strict();

export const tenderCancelledV1 = z
  .object({
    ...envelope,
    status: z.literal('cancelled'),
    previousStatus: z.enum(['draft', 'published', 'closed']),
    reason: z.string().min(1),
  })
  .strict();

export interface EventContract<T extends string = string, V extends number = number, S extends z.ZodType = z.ZodType> {
  /** Without version, e.g. `kvary.tenders.tender.published` (the outbox `event_type`). */
  eventType: T;
  version: V;
  schema: S;
}

function contract<const T extends string, const V extends number, S extends z.ZodType>(
  eventType: T,
  version: V,
  schema: S,
): EventContract<T, V, S> {
  return { eventType, version, schema };
}

/** The current (producing) version of each tender event. */
export const tenderEvents = {
  created: contract('kvary.tenders.tender.created', 1, tenderCreatedV1),
  updated: contract('kvary.tenders.tender.updated', 1, tenderUpdatedV1),
  published: contract('kvary.tenders.tender.published', 1, tenderPublishedV1),
  bidSubmitted: contract('kvary.tenders.tender.bid-submitted', 1, tenderBidSubmittedV1),
  closed: contract('kvary.tenders.tender.closed', 1, tenderClosedV1),
  awarded: contract('kvary.tenders.tender.awarded', 1, tenderAwardedV1),
  cancelled: contract('kvary.tenders.tender.cancelled', 1, tenderCancelledV1),
} as const;

export type TenderEventName = keyof typeof tenderEvents;

/** CloudEvents `ce_type`: the event type with its version, e.g. `kvary.tenders.tender.created.v1`. */
export function ceType<const T extends string, const V extends number>(eventType: T, version: V): `${T}.v${V}` {
  return `${eventType}.v${version}`;
}

type Contracts = (typeof tenderEvents)[TenderEventName];
type RegistryOf<C extends EventContract> = { [K in C as `${K['eventType']}.v${K['version']}`]: K };

/** Every known `ce_type` (older versions stay here while consumers may still see them). */
export const eventContracts = Object.fromEntries(
  Object.values(tenderEvents).map((c) => [ceType(c.eventType, c.version), c]),
) as RegistryOf<Contracts>;

export type CeType = keyof typeof eventContracts;
export type EventPayload<T extends CeType> = z.output<(typeof eventContracts)[T]['schema']>;
export type TenderEventPayload<N extends TenderEventName> = z.output<(typeof tenderEvents)[N]['schema']>;

export function isKnownCeType(type: string): type is CeType {
  return Object.hasOwn(eventContracts, type);
}

export class UnknownEventTypeError extends Error {
  override name = 'UnknownEventTypeError';
  /** The DLQ reason consumers record. */
  readonly reason = 'unknown_event_type';
  constructor(readonly ceType: string) {
    super(`unknown event type or version: ${JSON.stringify(ceType)}`);
  }
}

export class ContractViolationError extends Error {
  override name = 'ContractViolationError';
  readonly reason = 'contract_violation';
  /** Dotted path of the first offending field ('' for the payload itself). */
  readonly path: string;
  constructor(
    readonly ceType: string,
    readonly issues: z.core.$ZodIssue[],
  ) {
    const first = issues[0];
    const path = first?.path.map(String).join('.') ?? '';
    super(`${ceType} payload violates its contract at ${path || '(root)'}: ${first?.message ?? 'invalid'}`);
    this.path = path;
  }
}

/** Validates data against the contract of a `ce_type`; throws UnknownEventTypeError or ContractViolationError. */
export function parseEvent<T extends CeType>(type: T, data: unknown): EventPayload<T>;
export function parseEvent(type: string, data: unknown): EventPayload<CeType>;
export function parseEvent(type: string, data: unknown): EventPayload<CeType> {
  if (!isKnownCeType(type)) throw new UnknownEventTypeError(type);
  const result = (eventContracts[type].schema as z.ZodType).safeParse(data);
  if (!result.success) throw new ContractViolationError(type, result.error.issues);
  return result.data as EventPayload<CeType>;
}

/** Producer side: validates a payload for one of the current events (throws ContractViolationError). */
export function buildEvent<N extends TenderEventName>(
  name: N,
  payload: TenderEventPayload<N>,
): { eventType: (typeof tenderEvents)[N]['eventType']; version: (typeof tenderEvents)[N]['version']; payload: TenderEventPayload<N> } {
  const c = tenderEvents[name];
  const type = ceType(c.eventType, c.version);
  const result = (c.schema as z.ZodType).safeParse(payload);
  if (!result.success) throw new ContractViolationError(type, result.error.issues);
  return { eventType: c.eventType, version: c.version, payload: result.data as TenderEventPayload<N> };
}
