// Gateway process: config, logger, app; listens on GATEWAY_PORT and shuts down gracefully.
import { access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@kvary/platform/config';
import { serve } from '@kvary/platform/http';
import { createLogger } from '@kvary/platform/logging';
import { SERVICE_NAME, buildApp } from './app.js';
import { configSchema } from './config.js';
import { createDocsPortal } from './docs-portal.js';

const config = loadConfig(configSchema);
const logger = createLogger({ name: SERVICE_NAME, level: config.LOG_LEVEL });

const fallback = config.AUTH_JWKS_FALLBACK_URL;
if (fallback?.startsWith('file:')) {
  const exists = await access(fileURLToPath(fallback)).then(
    () => true,
    () => false,
  );
  logger.info({ fallback, exists }, 'development: tokens are verified with the dev JWKS file while AUTH_JWKS_URL is unreachable');
}

const app = buildApp({
  config,
  logger,
  docsPortal: createDocsPortal({ dir: config.GATEWAY_DOCS_DIR, recheckMs: config.GATEWAY_DOCS_RECHECK_MS }),
});
await serve(app, { port: config.GATEWAY_PORT, host: config.HOST, logger });
logger.info(
  { port: config.GATEWAY_PORT, env: config.KES_ENV, auth: config.AUTH_URL, tenders: config.TENDERS_URL },
  `${SERVICE_NAME} listening`,
);
