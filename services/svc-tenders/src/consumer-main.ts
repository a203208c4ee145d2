// The workspace consumer as its own process (CONSUMER_MODE=standalone in the service, `npm run
// consumer` here): /health and /metrics on CONSUMER_PORT, graceful shutdown on SIGTERM/SIGINT.
import { loadConfig } from '@kvary/platform/config';
import { createHttpApp, serve } from '@kvary/platform/http';
import { createKafka, parseBrokers } from '@kvary/platform/kafka';
import { createLogger } from '@kvary/platform/logging';
import { createMetricsRegistry } from '@kvary/platform/metrics';
import { createPool, pingDatabase } from '@kvary/platform/postgres';
import { consumerConfigSchema } from './config.js';
import { WorkspaceConsumer, startWhenReachable } from './workspace/consumer.js';
import { createConsumerMetrics } from './workspace/metrics.js';

const NAME = 'svc-tenders-consumer';
const config = loadConfig(consumerConfigSchema);
const logger = createLogger({ name: NAME, level: config.LOG_LEVEL });
const pool = createPool({ connectionString: config.DATABASE_URL, max: config.DATABASE_POOL_MAX, applicationName: NAME });
const metrics = createMetricsRegistry({ service: NAME });
const consumer = new WorkspaceConsumer({
  pool,
  kafka: createKafka({ brokers: parseBrokers(config.KAFKA_BROKERS), clientId: `${config.KAFKA_CLIENT_ID}-consumer`, logger }),
  logger,
  metrics: createConsumerMetrics(metrics),
  settings: config,
  mode: 'standalone',
});
const app = createHttpApp({
  service: NAME,
  logger,
  metrics,
  healthChecks: { postgres: () => pingDatabase(pool) },
  healthDetails: () => ({ consumer: consumer.status() }),
});

let stopping = false;
await serve(app, {
  port: config.CONSUMER_PORT,
  host: config.HOST,
  logger,
  onShutdown: async () => {
    stopping = true;
    await consumer.stop();
    await pool.end();
  },
});
logger.info({ port: config.CONSUMER_PORT, topic: config.CONSUMER_TOPIC, group: config.CONSUMER_GROUP }, `${NAME} listening`);
await startWhenReachable(consumer, logger, () => stopping);
