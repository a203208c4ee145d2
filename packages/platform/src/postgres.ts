// Postgres: pool creation and the transaction helper every repository call runs inside.
import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

export interface PoolSettings {
  connectionString: string;
  max?: number;
  applicationName?: string;
  statementTimeoutMs?: number;
  /** Session settings sent at connect, e.g. `-c jit=off`. */
  options?: string;
}

export function createPool(settings: PoolSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.connectionString,
    max: settings.max ?? 10,
    application_name: settings.applicationName,
    statement_timeout: settings.statementTimeoutMs,
    options: settings.options,
    connectionTimeoutMillis: 5000,
  });
  // An idle client that loses its connection emits 'error' on the pool; without a listener
  // that would crash the process. The next query simply gets a fresh connection.
  pool.on('error', () => undefined);
  return pool;
}

// Clients currently inside withTransaction: lets transactional writers (the outbox) refuse a
// pool or a client that is not in a transaction, where a write would commit on its own.
const openTransactions = new WeakSet<object>();

export function isInTransaction(client: unknown): boolean {
  return typeof client === 'object' && client !== null && openTransactions.has(client);
}

/**
 * Runs fn inside BEGIN/COMMIT on one pooled client: rollback when fn throws, release always.
 * A client whose ROLLBACK failed is destroyed rather than returned to the pool.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    openTransactions.add(client);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError as Error;
    }
    throw error;
  } finally {
    openTransactions.delete(client);
    client.release(broken);
  }
}

/** True when a trivial query succeeds within timeoutMs. */
export async function pingDatabase(pool: pg.Pool, timeoutMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      pool.query('SELECT 1'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Creates a database when it does not exist yet (names are checked, not quoted blindly). */
export async function ensureDatabase(adminUrl: string, name: string, template?: string): Promise<boolean> {
  assertIdentifier(name);
  if (template) assertIdentifier(template);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount) return false;
    await client.query(`CREATE DATABASE "${name}"${template ? ` TEMPLATE "${template}"` : ''}`);
    return true;
  } catch (error) {
    // Two processes racing to create the same database: the loser sees 42P04.
    if ((error as { code?: string }).code === '42P04') return false;
    throw error;
  } finally {
    await client.end();
  }
}

export function assertIdentifier(name: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`unsafe SQL identifier: ${JSON.stringify(name)}`);
}

/** The same connection string pointing at another database. */
export function withDatabase(connectionString: string, database: string): string {
  const url = new URL(connectionString);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * Deletes rows whose `column` is older than maxAgeHours, batchSize rows per statement, until a
 * statement deletes fewer: short transactions, no long locks (retention jobs).
 */
export async function deleteOlderThan(
  db: Queryable,
  table: string,
  column: string,
  maxAgeHours: number,
  batchSize = 1000,
): Promise<number> {
  assertIdentifier(table);
  assertIdentifier(column);
  let total = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `DELETE FROM ${table} WHERE ctid IN (
         SELECT ctid FROM ${table}
         WHERE ${column} < clock_timestamp() - make_interval(secs => $1::double precision * 3600)
         LIMIT $2)`,
      [maxAgeHours, batchSize],
    );
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < batchSize) return total;
  }
}
