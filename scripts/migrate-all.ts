// `npm run migrate:all`: root migrations, then each service's, in the fixed order of
// scripts/migration-sets.ts. Creates the target database when it is missing.
import { runMigrationCommand } from '@kvary/platform/migration-command';
import { migrationSets } from './migration-sets.js';

await runMigrationCommand('migrate:all', migrationSets);
