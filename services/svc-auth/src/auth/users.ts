// User and external-identity SQL. Functions take the caller's client so the caller owns the
// transaction. Emails are matched through lower(email), the unique index's expression.
import { randomUUID } from 'node:crypto';
import type { Queryable } from '@kvary/platform/postgres';
import { isRole, type Role } from '@kvary/identity/roles';

export interface UserRow {
  id: string;
  email: string;
  display_name: string;
  password_hash: string | null;
  org_id: string | null;
  roles: string[];
  disabled: boolean;
}

export interface PublicUser {
  id: string;
  email: string;
  displayName: string;
  roles: Role[];
  orgId: string | null;
}

const COLUMNS = 'id, email, display_name, password_hash, org_id, roles, disabled';

export function toPublicUser(row: UserRow): PublicUser {
  return { id: row.id, email: row.email, displayName: row.display_name, roles: row.roles.filter(isRole), orgId: row.org_id };
}

export async function findUserByEmail(db: Queryable, email: string): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(`SELECT ${COLUMNS} FROM auth_users WHERE lower(email) = lower($1)`, [email]);
  return rows[0];
}

export async function findUserById(db: Queryable, id: string): Promise<UserRow | undefined> {
  // A malformed id (e.g. a token from another issuer) is simply "no such user", not a 500.
  if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
  const { rows } = await db.query<UserRow>(`SELECT ${COLUMNS} FROM auth_users WHERE id = $1`, [id]);
  return rows[0];
}

export async function updatePasswordHash(db: Queryable, userId: string, passwordHash: string): Promise<void> {
  await db.query('UPDATE auth_users SET password_hash = $2, updated_at = clock_timestamp() WHERE id = $1', [userId, passwordHash]);
}

export interface UserUpsert {
  email: string;
  displayName: string;
  roles: readonly Role[];
  orgId: string | null;
  passwordHash: string | null;
}

/** Inserts or updates by email (case-insensitive); the id of an existing user is kept. */
export async function upsertUserByEmail(db: Queryable, user: UserUpsert): Promise<{ row: UserRow; created: boolean }> {
  const { rows } = await db.query<UserRow & { created: boolean }>(
    `INSERT INTO auth_users (id, email, display_name, roles, org_id, password_hash)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT ((lower(email))) DO UPDATE
       SET display_name = EXCLUDED.display_name, roles = EXCLUDED.roles, org_id = EXCLUDED.org_id,
           password_hash = COALESCE(EXCLUDED.password_hash, auth_users.password_hash), updated_at = clock_timestamp()
     RETURNING ${COLUMNS}, (xmax = 0) AS created`,
    [randomUUID(), user.email, user.displayName, [...user.roles], user.orgId, user.passwordHash],
  );
  const { created, ...row } = rows[0] as UserRow & { created: boolean };
  return { row, created };
}

export async function insertUser(db: Queryable, user: UserUpsert): Promise<UserRow> {
  const { rows } = await db.query<UserRow>(
    `INSERT INTO auth_users (id, email, display_name, roles, org_id, password_hash)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
    [randomUUID(), user.email, user.displayName, [...user.roles], user.orgId, user.passwordHash],
  );
  return rows[0] as UserRow;
}

export async function findUserByIdentity(db: Queryable, issuer: string, subject: string): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(
    `UPDATE auth_user_identities i SET last_login_at = clock_timestamp()
       FROM auth_users u WHERE i.issuer = $1 AND i.subject = $2 AND u.id = i.user_id
     RETURNING ${COLUMNS.split(', ').map((c) => `u.${c}`).join(', ')}`,
    [issuer, subject],
  );
  return rows[0];
}

export async function linkIdentity(db: Queryable, link: { issuer: string; subject: string; userId: string; email: string | null }): Promise<void> {
  await db.query('INSERT INTO auth_user_identities (issuer, subject, user_id, email) VALUES ($1, $2, $3, $4)', [
    link.issuer,
    link.subject,
    link.userId,
    link.email,
  ]);
}
