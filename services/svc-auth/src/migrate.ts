// `npm -w @kvary/svc-auth run migrate`: applies only this service's migrations (owner
// svc_auth, the same owner as in scripts/migration-sets.ts), creating the database if needed.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { loadConfig } from '@kvary/platform/config';
import { createLogger } from '@kvary/platform/logging';
import { runMigrations } from '@kvary/platform/migrations';
import { ensureDatabase, withDatabase } from '@kvary/platform/postgres';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../migrations');
export const MIGRATION_OWNER = 'svc_auth';

const config = loadConfig(
  z.object({
    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/kvary'),
    LOG_LEVEL: z.string().default('warn'),
  }),
);
const logger = createLogger({ name: 'svc-auth-migrate', level: config.LOG_LEVEL, pretty: false });
const database = new URL(config.DATABASE_URL).pathname.slice(1) || 'postgres';
const started = Date.now();
try {
  const created = await ensureDatabase(withDatabase(config.DATABASE_URL, 'postgres'), database);
  const [result] = await runMigrations({
    databaseUrl: config.DATABASE_URL,
    sets: [{ owner: MIGRATION_OWNER, dir: MIGRATIONS_DIR }],
    logger,
  });
  const applied = result?.applied ?? [];
  console.log(
    `svc-auth migrations on ${new URL(config.DATABASE_URL).host}/${database}${created ? ' (database created)' : ''}: ` +
      (applied.length ? `applied ${applied.join(', ')}` : 'up to date'),
  );
  console.log(JSON.stringify({ ok: true, owner: MIGRATION_OWNER, database, databaseCreated: created, applied, ms: Date.now() - started }));
} catch (error) {
  console.error(`svc-auth migrations failed: ${(error as Error).message}`);
  console.log(JSON.stringify({ ok: false, owner: MIGRATION_OWNER, database, error: (error as Error).message }));
  process.exitCode = 1;
}
