// Gateway configuration: validated once at start; nothing else reads process.env.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { KES_ENVS, defaultKesEnv } from '@kvary/platform/config';

/** `<repo>/.local/keys/jwks.json` (this file is services/gateway/{src,dist}/config.*). */
export const DEV_JWKS_FILE_URL = pathToFileURL(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..', '.local/keys/jwks.json'),
).href;

/** `<repo>/docs`: the documentation portal's folder. */
export const DEFAULT_DOCS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..', 'docs');

const httpUrl = z.url({ protocol: /^https?$/ }).transform((url) => url.replace(/\/+$/, ''));
const millis = (fallback: number) => z.coerce.number().int().min(1).max(600_000).default(fallback);

/** A comma-separated list of origins (`scheme://host[:port]`), normalised by URL. */
const origins = z.string().transform((value, ctx) => {
  const list: string[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(item)} is not an origin` });
      return z.NEVER;
    }
    if (url.origin === 'null' || url.pathname !== '/' || url.search || url.hash) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(item)} must be an origin like http://host:port` });
      return z.NEVER;
    }
    list.push(url.origin);
  }
  return list;
});

export const configSchema = z
  .object({
    GATEWAY_PORT: z.coerce.number().int().min(1).max(65535).default(4020),
    HOST: z.string().min(1).default('127.0.0.1'),
    // Production is the safe default; the dev script sets development.
    KES_ENV: z.enum(KES_ENVS).default(defaultKesEnv(import.meta.url)),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    AUTH_URL: httpUrl.default('http://127.0.0.1:4100'),
    TENDERS_URL: httpUrl.default('http://127.0.0.1:4060'),
    AUTH_JWKS_URL: z.url({ protocol: /^(https?|file)$/ }).default('http://127.0.0.1:4100/.well-known/jwks.json'),
    // Development only: used when AUTH_JWKS_URL cannot be fetched (svc-auth not running), so
    // tokens from the dev-token CLI still work. Never used when KES_ENV=production.
    AUTH_JWKS_FALLBACK_URL: z.url({ protocol: /^(https?|file)$/ }).optional(),
    AUTH_ISSUER: z.string().min(1).default('http://127.0.0.1:4100'),
    AUTH_AUDIENCE: z.string().min(1).default('kvary'),
    GATEWAY_ALLOWED_ORIGINS: origins.default(['http://127.0.0.1:4020', 'http://localhost:4020']),
    GATEWAY_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(50 * 1024 * 1024).default(1024 * 1024),
    GATEWAY_RATE_LIMIT_MAX: z.coerce.number().int().min(1).default(600),
    GATEWAY_RATE_LIMIT_WINDOW_MS: millis(60_000),
    GATEWAY_UPSTREAM_CONNECT_TIMEOUT_MS: millis(2_000),
    GATEWAY_UPSTREAM_TIMEOUT_MS: millis(15_000),
    GATEWAY_HEALTH_TIMEOUT_MS: millis(2_000),
    GATEWAY_TOKEN_CACHE_MAX: z.coerce.number().int().min(1).default(10_000),
    GATEWAY_TRUST_PROXY: z.stringbool().default(false),
    // The read-only documentation portal: its folder, and how often (at most) it looks for changes.
    GATEWAY_DOCS_DIR: z.string().min(1).transform((dir) => path.resolve(dir)).default(DEFAULT_DOCS_DIR),
    GATEWAY_DOCS_RECHECK_MS: z.coerce.number().int().min(0).max(600_000).default(2_000),
  })
  .transform((config) => ({
    ...config,
    AUTH_JWKS_FALLBACK_URL:
      config.KES_ENV === 'production' ? undefined : (config.AUTH_JWKS_FALLBACK_URL ?? (config.KES_ENV === 'development' ? DEV_JWKS_FILE_URL : undefined)),
  }));

export type GatewayConfig = z.output<typeof configSchema>;
