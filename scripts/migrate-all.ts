// `npm run migrate:all`: root migrations, then each service's, in the fixed order of
// scripts/migration-sets.ts. Creates the target database when it is missing.
import { loadConfig } from '@kvary/platform/config';
import { runMigrations } from '@kvary/platform/migrations';
import { ensureDatabase, withDatabase } from '@kvary/platform/postgres';
import { z } from 'zod';
import { migrationSets } from './migration-sets.js';

const config = loadConfig(
  z.object({ DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/kvary') }),
);

const database = new URL(config.DATABASE_URL).pathname.replace(/^\//, '');
try {
  if (await ensureDatabase(withDatabase(config.DATABASE_URL, 'postgres'), database)) {
    console.log(`created database ${database}`);
  }
  const results = await runMigrations({ databaseUrl: config.DATABASE_URL, sets: migrationSets });
  for (const r of results) {
    console.log(`${r.owner}: ${r.applied.length ? `applied ${r.applied.join(', ')}` : 'up to date'}`);
  }
  console.log(JSON.stringify({ ok: true, database, owners: results }));
} catch (error) {
  console.error(`migrate:all failed: ${(error as Error).message}`);
  console.log(JSON.stringify({ ok: false, error: (error as Error).message }));
  process.exit(1);
}
