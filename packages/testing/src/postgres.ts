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
export async function createTestDatabase(label = 'db'): Promise<TestDatabase> {
  const adminUrl = inject('adminDatabaseUrl');
  const template = inject('templateDatabase');
  const name = `kvary_t_${label.replace(/[^a-z0-9]/gi, '').toLowerCase().slice(0, 20)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const pool = createPool({ connectionString: url, max: 10, applicationName: `test-${label}` });
  return {
    url,
    name,
    pool,
    close: async () => {
      await pool.end();
      if (process.env.KEEP_TEST_DATABASES === '1') return;
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** An empty database (no migrations), for testing the migration runner itself. */
export async function createEmptyDatabase(label = 'empty'): Promise<TestDatabase> {
  const adminUrl = inject('adminDatabaseUrl');
  const name = `kvary_t_${label.replace(/[^a-z0-9]/gi, '').toLowerCase().slice(0, 20)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const pool = createPool({ connectionString: url, max: 5 });
  return {
    url,
    name,
    pool,
    close: async () => {
      await pool.end();
      if (process.env.KEEP_TEST_DATABASES === '1') return;
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
