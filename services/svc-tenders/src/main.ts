// svc-tenders process: config, logger, pool, verifier, the workspace consumer (CONSUMER_MODE=
// embedded); listens and shuts down gracefully.
import { access } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@kvary/platform/config';
import { serve } from '@kvary/platform/http';
import { createKafka, parseBrokers } from '@kvary/platform/kafka';
import { createLogger } from '@kvary/platform/logging';
import { createMetricsRegistry } from '@kvary/platform/metrics';
import { createPool } from '@kvary/platform/postgres';
import { DEV_JWKS_FILE, loadOrCreateDevKeys } from '@kvary/identity/keys';
import { createTokenVerifier } from '@kvary/identity/verifier';
import { SERVICE_NAME, buildApp } from './app.js';
import { configSchema } from './config.js';
import { startRetention } from './retention.js';
import { WorkspaceConsumer, startWhenReachable } from './workspace/consumer.js';
import { createConsumerMetrics } from './workspace/metrics.js';

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

// standalone: `npm run consumer` runs it in its own process; off: nobody in this process.
const consumer =
  config.CONSUMER_MODE === 'embedded'
    ? new WorkspaceConsumer({
        pool,
        kafka: createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: config.KAFKA_CLIENT_ID, logger }),
        logger: logger.child({ component: 'workspace-consumer' }),
        metrics: createConsumerMetrics(metrics),
        settings: config,
      })
    : undefined;
const app = buildApp({
  pool,
  logger,
  verifier,
  metrics,
  config,
  consumerStatus: () => consumer?.status() ?? { state: 'off', mode: config.CONSUMER_MODE },
});

// Idempotency keys, the consumer inbox and old activity rows: purged in batches periodically.
const retention = startRetention(pool, config, logger);
let stopping = false;

await serve(app, {
  port: config.TENDERS_PORT,
  host: config.HOST,
  logger,
  onShutdown: async () => {
    stopping = true;
    // The consumer first: its in-flight message still needs the pool.
    await consumer?.stop();
    await retention.stop();
    await pool.end();
  },
});
logger.info({ port: config.TENDERS_PORT, env: config.KES_ENV, consumer: config.CONSUMER_MODE }, `${SERVICE_NAME} listening`);
// Kafka is not needed to serve the API: the consumer starts whenever the broker answers.
if (consumer) void startWhenReachable(consumer, logger, () => stopping);
