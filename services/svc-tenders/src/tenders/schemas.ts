// HTTP shapes of the tender API (zod; also the source of the OpenAPI document) and the
// row -> response mapping.
import { z } from 'zod';
import { moneySchema, tenderStatusSchema } from '@kvary/contracts/tenders';
import type { BidRow, TenderRow } from './repository.js';

const isoDateTime = z.iso.datetime({ offset: true });

export const tenderParams = z.object({ id: z.uuid() }).strict();

/** POST headers: only the ones we read are checked; every other header passes. */
export const commandHeaders = z.looseObject({
  'idempotency-key': z.string().min(1).max(200).optional(),
});

export const createTenderBody = z
  .object({
    title: z.string().trim().min(1).max(300),
    description: z.string().max(20_000).default(''),
    budget: moneySchema,
    deadline: isoDateTime,
  })
  .strict();

export const updateTenderBody = z
  .object({
    title: z.string().trim().min(1).max(300).optional(),
    description: z.string().max(20_000).optional(),
    budget: moneySchema.optional(),
    deadline: isoDateTime.optional(),
  })
  .strict()
  .refine((body) => Object.values(body).some((v) => v !== undefined), { message: 'at least one field must change' });

/** Commands without arguments still refuse a body with fields in it. */
export const emptyBody = z.object({}).strict().nullish();

export const submitBidBody = z
  .object({
    amount: moneySchema,
    note: z.string().max(5_000).default(''),
  })
  .strict();

export const awardBody = z.object({ bidId: z.uuid() }).strict();
export const cancelBody = z.object({ reason: z.string().trim().min(1).max(1_000) }).strict();

export const listQuery = z
  .object({
    status: tenderStatusSchema.optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).max(500).optional(),
  })
  .strict();

export const tenderSchema = z.object({
  id: z.uuid(),
  orgId: z.string(),
  title: z.string(),
  description: z.string(),
  budget: moneySchema,
  deadline: isoDateTime,
  status: tenderStatusSchema,
  awardedBidId: z.uuid().nullable(),
  publishedAt: isoDateTime.nullable(),
  closedAt: isoDateTime.nullable(),
  cancelReason: z.string().nullable(),
  version: z.number().int(),
  createdBy: z.string(),
  createdAt: isoDateTime,
  updatedAt: isoDateTime,
});
export type TenderDto = z.infer<typeof tenderSchema>;

export const bidSchema = z.object({
  id: z.uuid(),
  tenderId: z.uuid(),
  supplierOrgId: z.string(),
  submittedBy: z.string(),
  amount: moneySchema,
  note: z.string(),
  createdAt: isoDateTime,
});
export type BidDto = z.infer<typeof bidSchema>;

export const tenderDetailSchema = tenderSchema.extend({
  /** Only the bids the caller may see (sealed until the tender closes). */
  bids: z.array(bidSchema),
});

export const tenderPageSchema = z.object({
  items: z.array(tenderSchema),
  nextCursor: z.string().nullable(),
});

export function toTenderDto(row: TenderRow): TenderDto {
  return {
    id: row.id,
    orgId: row.org_id,
    title: row.title,
    description: row.description,
    budget: { amount: row.budget_amount, currency: row.budget_currency },
    deadline: row.deadline.toISOString(),
    status: row.status,
    awardedBidId: row.awarded_bid_id,
    publishedAt: row.published_at?.toISOString() ?? null,
    closedAt: row.closed_at?.toISOString() ?? null,
    cancelReason: row.cancel_reason,
    version: row.version,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export function toBidDto(row: BidRow): BidDto {
  return {
    id: row.id,
    tenderId: row.tender_id,
    supplierOrgId: row.supplier_org_id,
    submittedBy: row.submitted_by,
    amount: { amount: row.amount, currency: row.currency },
    note: row.note,
    createdAt: row.created_at.toISOString(),
  };
}
