// The body of every `migrate` command (`npm run migrate:all`, `npm --prefix services/<svc> run
// migrate`): creates the database when missing, applies the given sets in order, prints one line
// per owner and a final JSON line; exit code 1 on failure.
import { z } from 'zod';
import { loadConfig } from './config.js';
import { createLogger } from './logging.js';
import { runMigrations, type MigrationSet } from './migrations.js';
import { ensureDatabase, withDatabase } from './postgres.js';

export async function runMigrationCommand(label: string, sets: MigrationSet[]): Promise<void> {
  const config = loadConfig(
    z.object({
      DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/kvary'),
      LOG_LEVEL: z.string().default('warn'),
    }),
  );
  const logger = createLogger({ name: label, level: config.LOG_LEVEL, pretty: false });
  const url = new URL(config.DATABASE_URL);
  const database = url.pathname.slice(1) || 'postgres';
  const started = Date.now();
  try {
    const created = await ensureDatabase(withDatabase(config.DATABASE_URL, 'postgres'), database);
    if (created) console.log(`${label}: created database ${database} on ${url.host}`);
    const owners = await runMigrations({ databaseUrl: config.DATABASE_URL, sets, logger });
    for (const r of owners) console.log(`${r.owner}: ${r.applied.length ? `applied ${r.applied.join(', ')}` : 'up to date'}`);
    console.log(JSON.stringify({ ok: true, database, databaseCreated: created, owners, ms: Date.now() - started }));
  } catch (error) {
    console.error(`${label} failed: ${(error as Error).message}`);
    console.log(JSON.stringify({ ok: false, database, error: (error as Error).message }));
    process.exitCode = 1;
  }
}
