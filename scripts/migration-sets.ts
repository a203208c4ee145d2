// The ordered list of migration folders: database-wide objects first, then each service.
// Used by `npm run migrate:all` and by the test harness, so both build the same schema.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MigrationSet } from '@kvary/platform/migrations';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const migrationSets: MigrationSet[] = [
  { owner: 'root', dir: path.join(root, 'migrations') },
  { owner: 'svc_auth', dir: path.join(root, 'services/svc-auth/migrations') },
  { owner: 'svc_tenders', dir: path.join(root, 'services/svc-tenders/migrations') },
  
];
