import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyDatabase, type TestDatabase } from '@kvary/testing/postgres';
import { runMigrations } from './migrations.js';
import { withTransaction } from './postgres.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createEmptyDatabase('platformpg');
  await db.pool.query('CREATE TABLE t (id int PRIMARY KEY, note text)');
});
afterAll(async () => db.close());

describe('withTransaction (real Postgres)', () => {
  it('commits what fn wrote', async () => {
    const value = await withTransaction(db.pool, async (client) => {
      await client.query(`INSERT INTO t VALUES (1, 'committed')`);
      return 42;
    });
    expect(value).toBe(42);
    const { rows } = await db.pool.query('SELECT note FROM t WHERE id = 1');
    expect(rows).toEqual([{ note: 'committed' }]);
  });

  it('rolls back when fn throws and rethrows the error', async () => {
    await expect(
      withTransaction(db.pool, async (client) => {
        await client.query(`INSERT INTO t VALUES (2, 'rolled back')`);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const { rowCount } = await db.pool.query('SELECT 1 FROM t WHERE id = 2');
    expect(rowCount).toBe(0);
  });

  it('releases the client every time (no pool leak)', async () => {
    for (let i = 0; i < 25; i++) {
      await withTransaction(db.pool, async () => {
        throw new Error('x');
      }).catch(() => undefined);
    }
    expect(db.pool.waitingCount).toBe(0);
    expect(db.pool.idleCount).toBe(db.pool.totalCount);
  });

  it('rolls back a failing SQL statement mid-transaction', async () => {
    await expect(
      withTransaction(db.pool, async (client) => {
        await client.query(`INSERT INTO t VALUES (3, 'a')`);
        await client.query(`INSERT INTO t VALUES (3, 'duplicate key')`);
      }),
    ).rejects.toThrow(/duplicate key/);
    const { rowCount } = await db.pool.query('SELECT 1 FROM t WHERE id = 3');
    expect(rowCount).toBe(0);
  });
});

describe('runMigrations (node-pg-migrate, real Postgres)', () => {
  function fixture(prefix: string): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'kvary-mig-'));
    writeFileSync(
      path.join(dir, '1000_first.sql'),
      `-- Up Migration\nCREATE TABLE ${prefix}_a (id int);\n-- Down Migration\nDROP TABLE ${prefix}_a;\n`,
    );
    writeFileSync(
      path.join(dir, '2000_second.sql'),
      `-- Up Migration\nCREATE TABLE ${prefix}_b (id int);\nSELECT pg_sleep(0.2);\n-- Down Migration\nDROP TABLE ${prefix}_b;\n`,
    );
    return dir;
  }

  it('applies each migration once, records it per owner, and is idempotent', async () => {
    const dir = fixture('once');
    const first = await runMigrations({ databaseUrl: db.url, sets: [{ owner: 'fixture', dir }] });
    expect(first).toEqual([{ owner: 'fixture', applied: ['1000_first', '2000_second'] }]);
    const second = await runMigrations({ databaseUrl: db.url, sets: [{ owner: 'fixture', dir }] });
    expect(second).toEqual([{ owner: 'fixture', applied: [] }]);
    const { rows } = await db.pool.query('SELECT name FROM pgmigrations_fixture ORDER BY id');
    expect(rows.map((r) => r.name)).toEqual(['1000_first', '2000_second']);
  });

  it('serialises concurrent runners with the advisory lock (both succeed, applied once)', async () => {
    const dir = fixture('concurrent');
    const sets = [{ owner: 'concurrent', dir }];
    const results = await Promise.all([
      runMigrations({ databaseUrl: db.url, sets }),
      runMigrations({ databaseUrl: db.url, sets }),
    ]);
    const appliedCounts = results.map((r) => r[0]?.applied.length).sort();
    expect(appliedCounts).toEqual([0, 2]);
  });

  it('rolls back a failing migration as a whole', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kvary-mig-bad-'));
    writeFileSync(path.join(dir, '1000_bad.sql'), '-- Up Migration\nCREATE TABLE bad_a (id int);\nSELECT no_such_function();\n');
    await expect(runMigrations({ databaseUrl: db.url, sets: [{ owner: 'bad', dir }] })).rejects.toThrow();
    const { rowCount } = await db.pool.query(`SELECT 1 FROM pg_tables WHERE tablename = 'bad_a'`);
    expect(rowCount).toBe(0);
  });
});
