// The relay's HTTP face: /health (Postgres and Kafka) and /metrics. Never listens by itself.
import { createHttpApp, type HttpApp } from '@kvary/platform/http';
import type { Logger } from '@kvary/platform/logging';
import type { Registry } from '@kvary/platform/metrics';
import type { OutboxRelay } from './relay.js';

export function buildApp(deps: { relay: OutboxRelay; logger: Logger; registry: Registry }): HttpApp {
  return createHttpApp({
    service: 'kes-outbox-relay',
    logger: deps.logger,
    metrics: deps.registry,
    healthChecks: deps.relay.healthChecks(),
    healthDetails: () => deps.relay.healthDetails(),
  });
}
