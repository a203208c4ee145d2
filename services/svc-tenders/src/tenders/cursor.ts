// Opaque keyset cursor: base64url of [created_at (microseconds, UTC), id] of the last item.
import { z } from 'zod';
import { badRequest } from '@kvary/platform/errors';

const cursorSchema = z.tuple([z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/), z.uuid()]);

export interface Cursor {
  createdAt: string;
  id: string;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

export function decodeCursor(value: string): Cursor {
  try {
    const [createdAt, id] = cursorSchema.parse(JSON.parse(Buffer.from(value, 'base64url').toString('utf8')));
    return { createdAt, id };
  } catch {
    throw badRequest('INVALID_CURSOR', 'cursor is not valid; use the nextCursor of a previous page', { field: 'querystring.cursor' });
  }
}
