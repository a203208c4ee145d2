// The svc-tenders HTTP app (never listens; main.ts does): /health, /metrics, /openapi.json and
// the tender API under /api/v1/tenders and the caller's workspace projection under /api/v1/workspace.
import swagger from '@fastify/swagger';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { createHttpApp, type HttpApp } from '@kvary/platform/http';
import type { Logger } from '@kvary/platform/logging';
import type { Registry } from '@kvary/platform/metrics';
import { pingDatabase, type Pool } from '@kvary/platform/postgres';
import type { TokenVerifier } from '@kvary/identity/verifier';
import type { TenderEventName } from '@kvary/contracts/tenders';
import type { TendersConfig } from './config.js';
import { tenderRoutes } from './tenders/routes.js';
import { TenderService } from './tenders/service.js';
import type { ConsumerStatus } from './workspace/consumer.js';
import { registerReplayMetrics } from './workspace/metrics.js';
import { workspaceRoutes } from './workspace/routes.js';

export const SERVICE_NAME = 'svc-tenders';

export interface AppDeps {
  pool: Pool;
  logger: Logger;
  verifier: TokenVerifier;
  metrics: Registry;
  config: Pick<TendersConfig, 'BODY_LIMIT_BYTES' | 'OUTBOX_NOTIFY' | 'TRUST_PROXY'> &
    Partial<Pick<TendersConfig, 'WORKSPACE_ACTIVITY_LIMIT'>>;
  /** The workspace consumer's state for /health (a detail: it never fails the check). */
  consumerStatus?: () => ConsumerStatus;
  /** Clock for deadline checks and event times (tests move it). */
  now?: () => Date;
  /** Test seam: runs inside a command after its domain write, right before the outbox write. */
  beforeOutboxWrite?: (event: TenderEventName) => void | Promise<void>;
}

export function buildApp(deps: AppDeps): HttpApp {
  const app = createHttpApp({
    service: SERVICE_NAME,
    logger: deps.logger,
    metrics: deps.metrics,
    bodyLimitBytes: deps.config.BODY_LIMIT_BYTES,
    trustProxy: deps.config.TRUST_PROXY,
    // Writes go to the outbox, not to Kafka: Postgres is the only thing this service needs.
    healthChecks: { postgres: () => pingDatabase(deps.pool) },
    healthDetails: () => ({ consumer: deps.consumerStatus?.() ?? { state: 'off', mode: 'off' } }),
  });
  registerReplayMetrics(deps.metrics, deps.pool);
  app.decorateRequest('identity', null);

  // Registered before the routes so it sees them; documents every route from its zod schemas.
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Kvary tenders API', version: '1.0.0', description: 'Tenders and sealed bids; every change is a KES event.' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    transform: jsonSchemaTransform,
  });

  const service = new TenderService({
    outboxNotify: deps.config.OUTBOX_NOTIFY,
    now: deps.now,
    beforeOutboxWrite: deps.beforeOutboxWrite,
  });
  void app.register(tenderRoutes, { prefix: '/api/v1/tenders', pool: deps.pool, service, verifier: deps.verifier, metrics: deps.metrics });
  void app.register(workspaceRoutes, {
    prefix: '/api/v1/workspace',
    pool: deps.pool,
    verifier: deps.verifier,
    activityLimit: deps.config.WORKSPACE_ACTIVITY_LIMIT ?? 20,
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
