// Migration runner over node-pg-migrate: one folder per owner, each with its own table,
// serialised by a Postgres advisory lock so concurrent starts wait instead of racing.
import path from 'node:path';
import { runner } from 'node-pg-migrate';
import type { Logger } from 'pino';

export interface MigrationSet {
  /** Owner name, used for the migrations table: `pgmigrations_<owner>`. */
  owner: string;
  dir: string;
}

export interface RunMigrationsOptions {
  databaseUrl: string;
  sets: MigrationSet[];
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  direction?: 'up' | 'down';
}

// Shared by every owner: migrations of different owners may depend on each other's objects.
const MIGRATION_LOCK_ID = 7_241_865_325_823_964;

export async function runMigrations(options: RunMigrationsOptions): Promise<{ owner: string; applied: string[] }[]> {
  const results: { owner: string; applied: string[] }[] = [];
  for (const set of options.sets) {
    const owner = set.owner.replace(/[^a-z0-9_]/gi, '_').toLowerCase();
    const applied = await runner({
      databaseUrl: options.databaseUrl,
      dir: path.resolve(set.dir),
      migrationsTable: `pgmigrations_${owner}`,
      direction: options.direction ?? 'up',
      checkOrder: true,
      singleTransaction: true,
      lockValue: MIGRATION_LOCK_ID,
      advisoryLockMode: 'wait',
      log: () => undefined,
      verbose: false,
    });
    const names = applied.map((m) => m.name);
    options.logger?.info({ owner, applied: names }, names.length ? `applied ${names.length} migration(s)` : 'up to date');
    results.push({ owner, applied: names });
  }
  return results;
}
