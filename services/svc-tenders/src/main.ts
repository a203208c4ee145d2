// svc-tenders process: config, logger, pool, verifier; listens and shuts down gracefully.
import { access } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@kvary/platform/config';
import { serve } from '@kvary/platform/http';
import { createLogger } from '@kvary/platform/logging';
import { createMetricsRegistry } from '@kvary/platform/metrics';
import { createPool } from '@kvary/platform/postgres';
import { DEV_JWKS_FILE, loadOrCreateDevKeys } from '@kvary/identity/keys';
import { createTokenVerifier } from '@kvary/identity/verifier';
import { SERVICE_NAME, buildApp } from './app.js';
import { configSchema } from './config.js';
import { purgeIdempotencyKeys } from './idempotency.js';

const config = loadConfig(configSchema);
const logger = createLogger({ name: SERVICE_NAME, level: config.LOG_LEVEL });

// Development only: the first start creates the dev key pair the local JWKS file points at.
if (config.KES_ENV === 'development' && config.AUTH_JWKS_URL.startsWith('file:')) {
  const jwksPath = fileURLToPath(config.AUTH_JWKS_URL);
  const exists = await access(jwksPath).then(
    () => true,
    () => false,
  );
  if (!exists && path.basename(jwksPath) === DEV_JWKS_FILE) {
    const keys = await loadOrCreateDevKeys(path.dirname(jwksPath));
    logger.info({ jwksPath: keys.jwksPath, kid: keys.signingKey.kid }, 'created development signing keys');
  } else if (!exists) {
    logger.warn({ jwksPath }, 'AUTH_JWKS_URL file does not exist; every token will be refused until it does');
  }
}

const pool = createPool({ connectionString: config.DATABASE_URL, max: config.DATABASE_POOL_MAX, applicationName: SERVICE_NAME });
const metrics = createMetricsRegistry({ service: SERVICE_NAME });
const verifier = createTokenVerifier({ jwksUrl: config.AUTH_JWKS_URL, issuer: config.AUTH_ISSUER, audience: config.AUTH_AUDIENCE });
const app = buildApp({ pool, logger, verifier, metrics, config });

// Idempotency keys are kept IDEMPOTENCY_RETENTION_HOURS; purge in batches every few minutes.
let purging: Promise<unknown> = Promise.resolve();
const purgeTimer = setInterval(() => {
  purging = purgeIdempotencyKeys(pool, config.IDEMPOTENCY_RETENTION_HOURS)
    .then((deleted) => deleted && logger.info({ deleted }, 'purged expired idempotency keys'))
    .catch((error: unknown) => logger.warn({ err: error }, 'idempotency key purge failed'));
}, 5 * 60_000);
purgeTimer.unref();

await serve(app, {
  port: config.PORT,
  host: config.HOST,
  logger,
  onShutdown: async () => {
    clearInterval(purgeTimer);
    await purging;
    await pool.end();
  },
});
logger.info({ port: config.PORT, env: config.KES_ENV }, `${SERVICE_NAME} listening`);
