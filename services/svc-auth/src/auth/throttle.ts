// Failed-login throttling (OWASP ASVS 2.2.1): fixed windows per account and per client IP,
// counted in Postgres so all instances agree. An account or IP that reached its limit is
// refused until its window ends, even with the right password.
import type { Queryable } from '@kvary/platform/postgres';

export interface ThrottleLimits {
  maxAccountFailures: number;
  maxIpFailures: number;
  windowSeconds: number;
}

export const accountKey = (email: string) => `account:${email.toLowerCase()}`;
export const ipKey = (ip: string) => `ip:${ip}`;

export interface Lockout {
  scope: 'account' | 'ip';
  retryAfterSeconds: number;
}

/** The lockout that applies to this attempt, if any (the longest one when both apply). */
export async function currentLockout(db: Queryable, limits: ThrottleLimits, email: string, ip: string): Promise<Lockout | undefined> {
  const { rows } = await db.query<{ key: string; failures: number; remaining: number }>(
    `SELECT key, failures,
            ceil(extract(epoch FROM window_started_at + make_interval(secs => $2) - clock_timestamp()))::int AS remaining
     FROM auth_login_throttle WHERE key = ANY($1::text[])`,
    [[accountKey(email), ipKey(ip)], limits.windowSeconds],
  );
  let lockout: Lockout | undefined;
  for (const row of rows) {
    const scope = row.key.startsWith('ip:') ? 'ip' : 'account';
    const limit = scope === 'ip' ? limits.maxIpFailures : limits.maxAccountFailures;
    if (row.failures < limit || row.remaining <= 0) continue;
    if (!lockout || row.remaining > lockout.retryAfterSeconds) lockout = { scope, retryAfterSeconds: row.remaining };
  }
  return lockout;
}

/** Counts one failure against the account and the IP (a window that ended starts over). */
export async function recordFailure(db: Queryable, limits: ThrottleLimits, email: string, ip: string): Promise<void> {
  await db.query(
    `INSERT INTO auth_login_throttle AS t (key, failures, window_started_at)
     SELECT k, 1, clock_timestamp() FROM unnest($1::text[]) AS k
     ON CONFLICT (key) DO UPDATE SET
       failures = CASE WHEN t.window_started_at + make_interval(secs => $2) <= clock_timestamp() THEN 1 ELSE t.failures + 1 END,
       window_started_at = CASE WHEN t.window_started_at + make_interval(secs => $2) <= clock_timestamp()
                                THEN clock_timestamp() ELSE t.window_started_at END,
       updated_at = clock_timestamp()`,
    [[accountKey(email), ipKey(ip)], limits.windowSeconds],
  );
}

/**
 * A successful login clears the account's counter. The IP counter stays: otherwise one valid
 * account would let an attacker reset the per-IP limit between guesses at other accounts.
 */
export async function clearAccountFailures(db: Queryable, email: string): Promise<void> {
  await db.query('DELETE FROM auth_login_throttle WHERE key = $1', [accountKey(email)]);
}

export async function purgeStaleThrottleRows(db: Queryable, windowSeconds: number, batch = 1000): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM auth_login_throttle WHERE key IN (
       SELECT key FROM auth_login_throttle WHERE window_started_at + make_interval(secs => $1) < clock_timestamp() LIMIT $2)`,
    [windowSeconds, batch],
  );
  return rowCount ?? 0;
}
