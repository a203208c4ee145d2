import { describe, expect, it } from 'vitest';
import { AppError } from '@kvary/platform/errors';
import { allowedActions, canPerform, transition } from './state-machine.js';

describe('tender state machine', () => {
  it('walks the happy path', () => {
    expect(transition('draft', 'update')).toBe('draft');
    expect(transition('draft', 'publish')).toBe('published');
    expect(transition('published', 'submitBid')).toBe('published');
    expect(transition('published', 'close')).toBe('closed');
    expect(transition('closed', 'award')).toBe('awarded');
  });

  it('cancels from draft, published and closed only', () => {
    for (const status of ['draft', 'published', 'closed'] as const) expect(transition(status, 'cancel')).toBe('cancelled');
    for (const status of ['awarded', 'cancelled'] as const) expect(canPerform(status, 'cancel')).toBe(false);
  });

  it('refuses illegal steps with 409 ILLEGAL_TRANSITION and a clear message', () => {
    try {
      transition('closed', 'publish');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(AppError);
      expect(error).toMatchObject({ statusCode: 409, code: 'ILLEGAL_TRANSITION', message: 'cannot publish a tender in status closed' });
    }
    expect(() => transition('draft', 'submitBid')).toThrow('cannot submit a bid on a tender in status draft');
    expect(() => transition('published', 'award')).toThrow('cannot award a tender in status published');
    expect(() => transition('published', 'update')).toThrow('cannot update a tender in status published');
  });

  it('lists what a status allows', () => {
    expect(allowedActions('draft')).toEqual(['update', 'publish', 'cancel']);
    expect(allowedActions('awarded')).toEqual([]);
  });
});
