// `npm --prefix services/svc-auth run migrate`: applies only this service's migrations (owner
// svc_auth, the same owner as in scripts/migration-sets.ts), creating the database if needed.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMigrationCommand } from '@kvary/platform/migration-command';

await runMigrationCommand('svc-auth migrate', [
  { owner: 'svc_auth', dir: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../migrations') },
]);
