// `npm run seed:dev`: upserts one development user per role (see docs/dev-users.md).
// Development and test only; prints a table and one JSON line.
import { z } from 'zod';
import { KES_ENVS, defaultKesEnv, loadConfig } from '@kvary/platform/config';
import { createPool } from '@kvary/platform/postgres';
import { PasswordVerifier } from './auth/passwords.js';
import { SCRYPT_LOG_N } from './config.js';
import { DEV_USERS, seedDevUsers } from './dev-users.js';

const config = loadConfig(
  z.object({
    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/kvary'),
    KES_ENV: z.enum(KES_ENVS).default(defaultKesEnv(import.meta.url)),
  }),
);

if (config.KES_ENV === 'production') {
  console.error('seed:dev refuses to run with KES_ENV=production: the dev passwords are public');
  console.log(JSON.stringify({ ok: false, error: 'KES_ENV=production' }));
  process.exit(1);
}

const pool = createPool({ connectionString: config.DATABASE_URL, max: 2, applicationName: 'svc-auth-seed-dev' });
const started = Date.now();
try {
  // Full production cost, so the dev server (which always verifies at the stored cost) and any
  // later production-mode run accept the same hashes.
  const results = await seedDevUsers(pool, new PasswordVerifier(SCRYPT_LOG_N));
  const passwords = new Map(DEV_USERS.map((u) => [u.email, u.password]));
  console.log(`development users on ${new URL(config.DATABASE_URL).host}${new URL(config.DATABASE_URL).pathname}:`);
  console.table(
    results.map((r) => ({ email: r.email, password: passwords.get(r.email), role: r.role, org: r.orgId ?? '-', action: r.action })),
  );
  console.log(
    JSON.stringify({
      ok: true,
      users: results.map(({ email, role, orgId, id, action }) => ({ email, role, orgId, id, action })),
      ms: Date.now() - started,
    }),
  );
} catch (error) {
  const message = (error as Error).message;
  const hint = /relation "auth_users" does not exist/.test(message) ? ' (run `npm run migrate:all` first)' : '';
  console.error(`seed:dev failed: ${message}${hint}`);
  console.log(JSON.stringify({ ok: false, error: message }));
  process.exitCode = 1;
} finally {
  await pool.end();
}
