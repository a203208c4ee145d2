// `npm --prefix services/svc-tenders run migrate`: applies only this service's migrations (owner
// svc_tenders, the same owner as in scripts/migration-sets.ts), creating the database if needed.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMigrationCommand } from '@kvary/platform/migration-command';

await runMigrationCommand('svc-tenders migrate', [
  { owner: 'svc_tenders', dir: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../migrations') },
]);
