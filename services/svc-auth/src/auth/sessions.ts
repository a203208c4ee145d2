// Server-side sessions. The cookie holds a random token; rows are keyed by its SHA-256, so
// the table never contains a usable cookie value.
import type { Queryable } from '@kvary/platform/postgres';
import { isTokenShaped, randomToken, sha256 } from './cookies.js';
import type { UserRow } from './users.js';

export interface NewSession {
  userId: string;
  method: 'password' | 'oidc';
  ttlSeconds: number;
  ip: string | null;
  userAgent: string | null;
}

/** Creates a session and returns the raw token (shown once, to the cookie). */
export async function createSession(db: Queryable, session: NewSession): Promise<{ token: string; expiresAt: Date }> {
  const token = randomToken();
  const { rows } = await db.query<{ expires_at: Date }>(
    `INSERT INTO auth_sessions (id_hash, user_id, method, expires_at, ip, user_agent)
     VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4), $5, $6) RETURNING expires_at`,
    [sha256(token), session.userId, session.method, session.ttlSeconds, session.ip, session.userAgent?.slice(0, 512) ?? null],
  );
  return { token, expiresAt: (rows[0] as { expires_at: Date }).expires_at };
}

/**
 * The user behind a live session (not revoked, not expired, user not disabled), touching
 * last_seen_at at most once a minute to keep writes down.
 */
export async function findSessionUser(db: Queryable, token: string | undefined): Promise<UserRow | undefined> {
  if (!isTokenShaped(token)) return undefined;
  const { rows } = await db.query<UserRow>(
    `WITH live AS (
       SELECT s.id_hash, s.user_id, s.last_seen_at FROM auth_sessions s
       WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > clock_timestamp()
     ), touched AS (
       UPDATE auth_sessions s SET last_seen_at = clock_timestamp()
       FROM live WHERE s.id_hash = live.id_hash AND live.last_seen_at < clock_timestamp() - interval '1 minute'
     )
     SELECT u.id, u.email, u.display_name, u.password_hash, u.org_id, u.roles, u.disabled
     FROM live JOIN auth_users u ON u.id = live.user_id WHERE NOT u.disabled`,
    [sha256(token)],
  );
  return rows[0];
}

/** Revokes the session of this token; true when a live session was revoked. */
export async function revokeSession(db: Queryable, token: string | undefined): Promise<boolean> {
  if (!isTokenShaped(token)) return false;
  const { rowCount } = await db.query(
    'UPDATE auth_sessions SET revoked_at = clock_timestamp() WHERE id_hash = $1 AND revoked_at IS NULL',
    [sha256(token)],
  );
  return (rowCount ?? 0) > 0;
}

/** Deletes sessions that ended (expired or revoked) more than retentionSeconds ago, in batches. */
export async function purgeEndedSessions(db: Queryable, retentionSeconds: number, batch = 1000): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM auth_sessions WHERE id_hash IN (
       SELECT id_hash FROM auth_sessions
       WHERE LEAST(expires_at, COALESCE(revoked_at, expires_at)) < clock_timestamp() - make_interval(secs => $1)
       LIMIT $2)`,
    [retentionSeconds, batch],
  );
  return rowCount ?? 0;
}
