// The svc-auth HTTP app (never listens; main.ts does): /health, /metrics, the JWKS and the
// auth API under /api/v1/auth.
import { createHttpApp, type HttpApp } from '@kvary/platform/http';
import type { Logger } from '@kvary/platform/logging';
import { counter, type Registry } from '@kvary/platform/metrics';
import { pingDatabase, type Pool } from '@kvary/platform/postgres';
import type { TokenVerifier } from '@kvary/identity/verifier';
import type { AuthConfig } from './config.js';
import { publishedJwks, type AuthKeys } from './auth/keys.js';
import { PasswordVerifier } from './auth/passwords.js';
import { authRoutes } from './auth/routes.js';
import { OidcClient } from './oidc/client.js';
import { oidcRoutes } from './oidc/routes.js';

export const SERVICE_NAME = 'svc-auth';

export interface AppDeps {
  pool: Pool;
  logger: Logger;
  metrics: Registry;
  config: AuthConfig;
  keys: AuthKeys;
  /** Verifies this service's own access tokens (see createSelfVerifier). */
  verifier: TokenVerifier;
}

export function buildApp(deps: AppDeps): HttpApp {
  const { config } = deps;
  const app = createHttpApp({
    service: SERVICE_NAME,
    logger: deps.logger,
    metrics: deps.metrics,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    trustProxy: config.TRUST_PROXY,
    // The OIDC provider is not a health dependency: password login works without it.
    healthChecks: { postgres: () => pingDatabase(deps.pool) },
  });

  const logins = counter(deps.metrics, {
    name: 'kes_auth_logins_total',
    help: 'Login attempts by method (password, oidc) and outcome',
    labelNames: ['method', 'outcome'],
  });
  const passwords = new PasswordVerifier(config.scryptLogN);
  const oidc = config.oidc ? new OidcClient(config.oidc) : null;

  // Stable URL; verifiers cache it for 5 minutes, and the previous key stays listed during a
  // rotation so tokens it signed keep verifying until they expire.
  const jwks = publishedJwks(deps.keys);
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return jwks;
  });

  void app.register(authRoutes, { prefix: '/api/v1/auth', pool: deps.pool, keys: deps.keys, verifier: deps.verifier, passwords, config, logins });
  void app.register(oidcRoutes, { prefix: '/api/v1/auth/oidc', pool: deps.pool, keys: deps.keys, config, oidc, logins });
  return app;
}
