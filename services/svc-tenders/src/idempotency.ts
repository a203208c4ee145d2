// Idempotency-Key support for commands. The key row is written in the command's own
// transaction, after a transaction-scoped advisory lock on (user, route, key): two concurrent
// identical requests serialise on that lock, and the second one finds the first one's committed
// row and replays it, so one command produces one event. A failed command stores nothing, so a
// retry after an error runs again.
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { AppError } from '@kvary/platform/errors';
import { withTransaction, type Pool, type Queryable, deleteOlderThan } from '@kvary/platform/postgres';

export interface CommandResult {
  statusCode: number;
  body: unknown;
}

export interface IdempotencyScope {
  userId: string;
  /** Method and route pattern, e.g. `POST /api/v1/tenders/:id/publish`. */
  route: string;
  key: string;
  /** Hash of what the request asks for (params and body). */
  requestHash: string;
}

export function hashRequest(parts: unknown): string {
  return createHash('sha256').update(stableJson(parts)).digest('hex');
}

/** JSON with sorted object keys, so `{a,b}` and `{b,a}` are the same request. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** Runs the command in one transaction, replaying the stored result for a known key. */
export async function runCommand(
  pool: Pool,
  scope: IdempotencyScope | undefined,
  command: (client: pg.PoolClient) => Promise<CommandResult>,
): Promise<CommandResult & { replayed: boolean }> {
  return withTransaction(pool, async (client) => {
    if (scope) {
      // JSON keeps the three parts apart (no separator can be forged inside a part).
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 4060))', [
        JSON.stringify([scope.userId, scope.route, scope.key]),
      ]);
      const { rows } = await client.query<{ request_hash: string; response_status: number; response_body: unknown }>(
        `SELECT request_hash, response_status, response_body FROM tenders_idempotency_keys
         WHERE user_id = $1 AND route = $2 AND idempotency_key = $3`,
        [scope.userId, scope.route, scope.key],
      );
      const stored = rows[0];
      if (stored) {
        if (stored.request_hash !== scope.requestHash) {
          throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was already used with a different request', {
            statusCode: 422,
          });
        }
        return { statusCode: stored.response_status, body: stored.response_body, replayed: true };
      }
    }
    const result = await command(client);
    if (scope) {
      await client.query(
        `INSERT INTO tenders_idempotency_keys (user_id, route, idempotency_key, request_hash, response_status, response_body)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [scope.userId, scope.route, scope.key, scope.requestHash, result.statusCode, JSON.stringify(result.body)],
      );
    }
    return { ...result, replayed: false };
  });
}

/** Deletes keys older than the retention in batches (short transactions, no long locks). */
export function purgeIdempotencyKeys(db: Queryable, retentionHours: number, batchSize = 1000): Promise<number> {
  return deleteOlderThan(db, 'tenders_idempotency_keys', 'created_at', retentionHours, batchSize);
}
