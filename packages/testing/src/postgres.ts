// Per-test-file databases cloned from the migrated template the global setup built.
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import pg from 'pg';
import { createPool, withDatabase, type Pool } from '@kvary/platform/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  pool: Pool;
  /** Closes the pool; the database is kept when KEEP_TEST_DATABASES=1 for inspection. */
  close: () => Promise<void>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
    templateDatabase: string;
    kafkaBrokers: string;
  }
}

/** CREATE DATABASE ... TEMPLATE <migrated template>: a fresh, fully migrated database. */
export function createTestDatabase(label = 'db'): Promise<TestDatabase> {
  return createDatabase(label, inject('templateDatabase'), 10);
}

/** An empty database (no migrations), for testing the migration runner itself. */
export function createEmptyDatabase(label = 'empty'): Promise<TestDatabase> {
  return createDatabase(label, undefined, 5);
}

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

async function createDatabase(label: string, template: string | undefined, poolMax: number): Promise<TestDatabase> {
  const name = `kvary_t_${label.replace(/[^a-z0-9]/gi, '').toLowerCase().slice(0, 20)}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}"${template ? ` TEMPLATE "${template}"` : ''}`);
  const url = withDatabase(inject('adminDatabaseUrl'), name);
  const pool = createPool({ connectionString: url, max: poolMax, applicationName: `test-${label}` });
  return {
    url,
    name,
    pool,
    close: async () => {
      await pool.end();
      if (process.env.KEEP_TEST_DATABASES === '1') return;
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}
