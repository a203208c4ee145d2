// The development users (one per role; GUEST is anonymous and has none). Their passwords are
// public (docs/dev-users.md): the seed refuses to run in production.
import type { Pool } from '@kvary/platform/postgres';
import { withTransaction } from '@kvary/platform/postgres';
import type { Role } from '@kvary/identity/roles';
import type { PasswordVerifier } from './auth/passwords.js';
import { findUserByEmail, upsertUserByEmail } from './auth/users.js';

export interface DevUser {
  email: string;
  displayName: string;
  role: Exclude<Role, 'GUEST'>;
  orgId: string | null;
  password: string;
}

export const DEV_USERS: readonly DevUser[] = [
  { email: 'supplier@kvary.dev', displayName: 'Dev Supplier', role: 'SUPPLIER', orgId: 'org-supplier-1', password: 'Kvary-dev-supplier-2026!' },
  {
    email: 'officer@kvary.dev',
    displayName: 'Dev Procurement Officer',
    role: 'PROCUREMENT_OFFICER',
    orgId: 'org-buyer-1',
    password: 'Kvary-dev-officer-2026!',
  },
  { email: 'chain@kvary.dev', displayName: 'Dev Chain Officer', role: 'CHAIN_OFFICER', orgId: null, password: 'Kvary-dev-chain-2026!' },
  {
    email: 'custodian@kvary.dev',
    displayName: 'Dev Document Custodian',
    role: 'DOCUMENT_CUSTODIAN',
    orgId: null,
    password: 'Kvary-dev-custodian-2026!',
  },
  { email: 'admin@kvary.dev', displayName: 'Dev Governance Admin', role: 'GOVERNANCE_ADMIN', orgId: null, password: 'Kvary-dev-admin-2026!' },
];

export interface SeedResult {
  email: string;
  role: Role;
  orgId: string | null;
  id: string;
  action: 'created' | 'updated';
  passwordReset: boolean;
}

/**
 * Idempotent: users are upserted by email (ids stay stable); a password is re-hashed only when
 * the stored hash does not match the documented one, so re-running changes nothing.
 */
export async function seedDevUsers(pool: Pool, passwords: PasswordVerifier, options: { onlyMissing?: boolean } = {}): Promise<SeedResult[]> {
  const results: SeedResult[] = [];
  for (const user of DEV_USERS) {
    const existing = await findUserByEmail(pool, user.email);
    // At development start-up only missing users are created: verifying every stored hash
    // would cost half a second of scrypt per user on each restart.
    if (existing && options.onlyMissing) continue;
    const keep = existing?.password_hash ? (await passwords.verify(user.password, existing.password_hash)).ok : false;
    const passwordHash = keep ? null : await passwords.hash(user.password);
    const { row, created } = await withTransaction(pool, (tx) =>
      upsertUserByEmail(tx, { email: user.email, displayName: user.displayName, roles: [user.role], orgId: user.orgId, passwordHash }),
    );
    results.push({ email: user.email, role: user.role, orgId: user.orgId, id: row.id, action: created ? 'created' : 'updated', passwordReset: !keep });
  }
  return results;
}
