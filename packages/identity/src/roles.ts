// The roles of the Kvary platform. GUEST is what an anonymous caller has.
import { z } from 'zod';

export const ROLES = ['GUEST', 'SUPPLIER', 'PROCUREMENT_OFFICER', 'CHAIN_OFFICER', 'DOCUMENT_CUSTODIAN', 'GOVERNANCE_ADMIN'] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.infer<typeof roleSchema>;

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}
