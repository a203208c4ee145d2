// svc-auth process: config, keys, logger, pool; listens and shuts down gracefully.
import { loadConfig } from '@kvary/platform/config';
import { serve } from '@kvary/platform/http';
import { createLogger } from '@kvary/platform/logging';
import { createMetricsRegistry } from '@kvary/platform/metrics';
import { createPool } from '@kvary/platform/postgres';
import { SERVICE_NAME, buildApp } from './app.js';
import { createSelfVerifier, loadAuthKeys } from './auth/keys.js';
import { purgeEndedSessions } from './auth/sessions.js';
import { purgeStaleThrottleRows } from './auth/throttle.js';
import { PasswordVerifier } from './auth/passwords.js';
import { SCRYPT_LOG_N, configSchema } from './config.js';
import { seedDevUsers } from './dev-users.js';
import { purgeOldLoginStates } from './oidc/states.js';

const config = loadConfig(configSchema);
const logger = createLogger({ name: SERVICE_NAME, level: config.LOG_LEVEL });

let keys: Awaited<ReturnType<typeof loadAuthKeys>>;
try {
  keys = await loadAuthKeys(config);
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
}
logger.info({ kid: keys.current.kid, previousKid: keys.previous?.kid ?? null, source: keys.source }, 'signing keys loaded');

const pool = createPool({ connectionString: config.DATABASE_URL, max: config.DATABASE_POOL_MAX, applicationName: SERVICE_NAME });
const metrics = createMetricsRegistry({ service: SERVICE_NAME });
const self = await createSelfVerifier(keys, { issuer: config.AUTH_ISSUER, audience: config.AUTH_AUDIENCE });
const app = buildApp({ pool, logger, metrics, config, keys, verifier: self.verifier });

// Development only: the documented dev users (docs/dev-users.md) exist without a separate
// `npm run seed:dev`, so the runbook's steps (migrate:all, dev:one, live smoke) work as written.
if (config.KES_ENV === 'development') {
  try {
    const created = await seedDevUsers(pool, new PasswordVerifier(SCRYPT_LOG_N), { onlyMissing: true });
    if (created.length) logger.info({ users: created.map((u) => u.email) }, 'created the development users (docs/dev-users.md)');
  } catch (error) {
    logger.warn({ err: error }, 'could not create the development users (run npm run migrate:all, then npm run seed:dev)');
  }
}

// Housekeeping in small batches: ended sessions (kept a day for audit), stale throttle
// windows, spent OIDC states.
let housekeeping: Promise<unknown> = Promise.resolve();
const timer = setInterval(() => {
  housekeeping = Promise.all([
    purgeEndedSessions(pool, 86_400),
    purgeStaleThrottleRows(pool, config.LOGIN_FAILURE_WINDOW),
    purgeOldLoginStates(pool),
  ])
    .then(([sessions, throttle, states]) => {
      if (sessions + throttle + states > 0) logger.info({ sessions, throttle, states }, 'purged expired auth rows');
    })
    .catch((error: unknown) => logger.warn({ err: error }, 'auth housekeeping failed'));
}, 5 * 60_000);
timer.unref();

await serve(app, {
  port: config.AUTH_PORT,
  host: config.HOST,
  logger,
  onShutdown: async () => {
    clearInterval(timer);
    await housekeeping;
    await pool.end();
    await self.dispose();
  },
});
logger.info(
  { port: config.AUTH_PORT, env: config.KES_ENV, oidcIssuer: config.oidc?.issuerUrl ?? null, secureCookies: config.secureCookies },
  `${SERVICE_NAME} listening`,
);
