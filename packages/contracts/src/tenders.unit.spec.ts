import { describe, expect, it } from 'vitest';
import {
  ContractViolationError,
  TENDERS_DLQ_TOPIC,
  TENDERS_SOURCE,
  TENDERS_TOPIC,
  UnknownEventTypeError,
  buildEvent,
  ceType,
  eventContracts,
  isKnownCeType,
  parseEvent,
  tenderEvents,
} from './tenders.js';

const base = {
  tenderId: '2f1c7a9e-1a7b-4c53-9a43-6f0e8c0f6a11',
  orgId: 'org-1',
  actorId: 'user-1',
  occurredAt: '2025-01-02T03:04:05.678Z',
  tenderVersion: 1,
};
const created = {
  ...base,
  title: 'Road repair',
  description: 'Tbilisi, 2 km',
  budget: { amount: '12500.00', currency: 'GEL' },
  deadline: '2026-01-01T00:00:00.000Z',
  status: 'draft',
};

describe('constants and types', () => {
  it('names the topics and source', () => {
    expect(TENDERS_TOPIC).toBe('kes.tenders.v1');
    expect(TENDERS_DLQ_TOPIC).toBe('kes.tenders.v1.dlq');
    expect(TENDERS_SOURCE).toBe('/kvary/svc-tenders');
  });

  it('builds CloudEvents types with the version suffix', () => {
    expect(ceType('kvary.tenders.tender.created', 1)).toBe('kvary.tenders.tender.created.v1');
    expect(Object.keys(eventContracts).sort()).toEqual([
      'kvary.tenders.tender.awarded.v1',
      'kvary.tenders.tender.bid-submitted.v1',
      'kvary.tenders.tender.cancelled.v1',
      'kvary.tenders.tender.closed.v1',
      'kvary.tenders.tender.created.v1',
      'kvary.tenders.tender.published.v1',
      'kvary.tenders.tender.updated.v1',
    ]);
    for (const [type, c] of Object.entries(eventContracts)) {
      expect(type).toBe(`${c.eventType}.v${c.version}`);
      expect(c.eventType).toMatch(/^kvary\.tenders\.tender\.[a-z-]+$/);
    }
    expect(isKnownCeType('kvary.tenders.tender.closed.v1')).toBe(true);
    expect(isKnownCeType('toString')).toBe(false);
  });
});

describe('parseEvent', () => {
  it('returns the parsed payload of a known type', () => {
    const payload = parseEvent('kvary.tenders.tender.created.v1', created);
    expect(payload.title).toBe('Road repair');
    expect(payload.budget).toEqual({ amount: '12500.00', currency: 'GEL' });
  });

  it('accepts every event kind with its fields', () => {
    const bidId = '7d0a1f7e-7b1c-4a0d-8f1e-3a2b1c0d9e8f';
    expect(() => parseEvent('kvary.tenders.tender.updated.v1', { ...base, tenderVersion: 2, changes: { title: 'x' } })).not.toThrow();
    expect(() =>
      parseEvent('kvary.tenders.tender.published.v1', {
        ...base,
        title: 't',
        budget: created.budget,
        deadline: created.deadline,
        status: 'published',
        publishedAt: base.occurredAt,
      }),
    ).not.toThrow();
    expect(() =>
      parseEvent('kvary.tenders.tender.bid-submitted.v1', { ...base, bidId, supplierOrgId: 'org-2', amount: { amount: '10', currency: 'GEL' } }),
    ).not.toThrow();
    expect(() => parseEvent('kvary.tenders.tender.closed.v1', { ...base, status: 'closed', closedAt: base.occurredAt, bidCount: 0 })).not.toThrow();
    expect(() =>
      parseEvent('kvary.tenders.tender.awarded.v1', {
        ...base,
        status: 'awarded',
        awardedBidId: bidId,
        supplierOrgId: 'org-2',
        amount: { amount: '10.5', currency: 'GEL' },
      }),
    ).not.toThrow();
    expect(() =>
      parseEvent('kvary.tenders.tender.cancelled.v1', { ...base, status: 'cancelled', previousStatus: 'draft', reason: 'no budget' }),
    ).not.toThrow();
  });

  it('throws UnknownEventTypeError for an unknown type or version', () => {
    expect(() => parseEvent('kvary.tenders.tender.created.v9', created)).toThrow(UnknownEventTypeError);
    try {
      parseEvent('kvary.tenders.tender.exploded.v1', created);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(UnknownEventTypeError);
      expect((error as UnknownEventTypeError).reason).toBe('unknown_event_type');
      expect((error as UnknownEventTypeError).ceType).toBe('kvary.tenders.tender.exploded.v1');
    }
  });

  it('throws ContractViolationError naming the field', () => {
    try {
      parseEvent('kvary.tenders.tender.created.v1', { ...created, budget: { amount: 12.5, currency: 'GEL' } });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ContractViolationError);
      expect((error as ContractViolationError).path).toBe('budget.amount');
      expect((error as Error).message).toContain('budget.amount');
    }
  });

  it('refuses unknown fields, bad ids and bad timestamps', () => {
    expect(() => parseEvent('kvary.tenders.tender.created.v1', { ...created, extra: 1 })).toThrow(ContractViolationError);
    expect(() => parseEvent('kvary.tenders.tender.created.v1', { ...created, tenderId: 'nope' })).toThrow(ContractViolationError);
    expect(() => parseEvent('kvary.tenders.tender.created.v1', { ...created, occurredAt: 'yesterday' })).toThrow(ContractViolationError);
    expect(() => parseEvent('kvary.tenders.tender.updated.v1', { ...base, changes: {} })).toThrow(ContractViolationError);
  });
});

describe('buildEvent', () => {
  it('returns type, version and the validated payload', () => {
    const event = buildEvent('created', { ...created, status: 'draft' });
    expect(event.eventType).toBe(tenderEvents.created.eventType);
    expect(event.version).toBe(1);
    expect(event.payload.tenderId).toBe(base.tenderId);
  });

  it('throws on a bad payload', () => {
    expect(() => buildEvent('closed', { ...base, status: 'closed', closedAt: base.occurredAt, bidCount: -1 })).toThrow(ContractViolationError);
  });
});
