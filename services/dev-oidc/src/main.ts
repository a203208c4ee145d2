// dev-oidc process: the local OpenID provider on 4001. Development only.
import { loadConfig } from '@kvary/platform/config';
import { createLogger } from '@kvary/platform/logging';
import { configSchema } from './config.js';

const config = loadConfig(configSchema);
const logger = createLogger({ name: 'dev-oidc', level: config.LOG_LEVEL });

if (config.KES_ENV === 'production') {
  process.stderr.write('dev-oidc is a development-only OpenID provider and refuses to run with KES_ENV=production\n');
  process.exit(1);
}

// Imported only after the check, so a refused start does not even load oidc-provider.
const { DEV_OIDC_USER, startDevOidc } = await import('./provider.js');
let oidc: Awaited<ReturnType<typeof startDevOidc>>;
try {
  oidc = await startDevOidc({
    port: config.DEV_OIDC_PORT,
    host: config.HOST,
    issuer: config.DEV_OIDC_ISSUER,
    redirectUris: config.DEV_OIDC_REDIRECT_URIS,
    clientId: config.DEV_OIDC_CLIENT_ID,
    clientSecret: config.DEV_OIDC_CLIENT_SECRET,
    autoLogin: config.DEV_OIDC_AUTO_LOGIN,
    kesEnv: config.KES_ENV,
    onError: (error) => logger.error({ err: error }, 'dev-oidc error'),
  });
} catch (error) {
  if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    logger.error(`port ${config.DEV_OIDC_PORT} is already in use: free it with \`node scripts/free-port.js ${config.DEV_OIDC_PORT}\``);
    process.exit(1);
  }
  throw error;
}

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  await oidc.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop('SIGTERM'));
process.once('SIGINT', () => void stop('SIGINT'));
logger.info(
  { issuer: oidc.issuer, clientId: config.DEV_OIDC_CLIENT_ID, user: DEV_OIDC_USER.email, autoLogin: config.DEV_OIDC_AUTO_LOGIN },
  `dev-oidc listening: discovery at ${oidc.issuer}/.well-known/openid-configuration`,
);
