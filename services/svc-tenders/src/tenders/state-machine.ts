// The tender life cycle. Every command asks this module before it changes a row, so an
// illegal step is refused in one place with one error shape (409 ILLEGAL_TRANSITION).
//   draft -> published -> closed -> awarded
//   draft | published | closed -> cancelled
import type { TenderStatus } from '@kvary/contracts/tenders';
import { AppError } from '@kvary/platform/errors';

export type TenderAction = 'update' | 'publish' | 'submitBid' | 'close' | 'award' | 'cancel';

interface Rule {
  from: readonly TenderStatus[];
  /** null: the action keeps the status (editing a draft, bidding). */
  to: TenderStatus | null;
  verb: string;
}

const RULES: Record<TenderAction, Rule> = {
  update: { from: ['draft'], to: null, verb: 'update' },
  publish: { from: ['draft'], to: 'published', verb: 'publish' },
  submitBid: { from: ['published'], to: null, verb: 'submit a bid on' },
  close: { from: ['published'], to: 'closed', verb: 'close' },
  award: { from: ['closed'], to: 'awarded', verb: 'award' },
  cancel: { from: ['draft', 'published', 'closed'], to: 'cancelled', verb: 'cancel' },
};

export function canPerform(status: TenderStatus, action: TenderAction): boolean {
  return RULES[action].from.includes(status);
}

/** The status after the action, or 409 ILLEGAL_TRANSITION. */
export function transition(status: TenderStatus, action: TenderAction): TenderStatus {
  const rule = RULES[action];
  if (!rule.from.includes(status)) {
    throw new AppError('ILLEGAL_TRANSITION', `cannot ${rule.verb} a tender in status ${status}`, { statusCode: 409 });
  }
  return rule.to ?? status;
}

export function allowedActions(status: TenderStatus): TenderAction[] {
  return (Object.keys(RULES) as TenderAction[]).filter((action) => canPerform(status, action));
}
