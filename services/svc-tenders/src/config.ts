// svc-tenders configuration: validated once at start; nothing else reads process.env.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { KES_ENVS, defaultKesEnv } from '@kvary/platform/config';

/** `<repo>/.local/keys/jwks.json` (this file is services/svc-tenders/{src,dist}/config.*). */
export const DEV_JWKS_URL = pathToFileURL(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..', '.local/keys/jwks.json'),
).href;

export const configSchema = z
  .object({
    PORT: z.coerce.number().int().min(1).max(65535).default(4060),
    HOST: z.string().min(1).default('127.0.0.1'),
    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/kvary'),
    DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
    // Production is the safe default; the dev script sets development.
    KES_ENV: z.enum(KES_ENVS).default(defaultKesEnv(import.meta.url)),
    AUTH_JWKS_URL: z.url({ protocol: /^(https?|file)$/ }).optional(),
    AUTH_ISSUER: z.string().min(1).default('http://127.0.0.1:4100'),
    AUTH_AUDIENCE: z.string().min(1).default('kvary'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(10 * 1024 * 1024).default(65536),
    OUTBOX_NOTIFY: z.stringbool().default(true),
    IDEMPOTENCY_RETENTION_HOURS: z.coerce.number().positive().default(24),
    TRUST_PROXY: z.stringbool().default(false),
  })
  .transform((config, ctx) => {
    if (config.AUTH_JWKS_URL) return { ...config, AUTH_JWKS_URL: config.AUTH_JWKS_URL };
    if (config.KES_ENV === 'production') {
      ctx.addIssue({ code: 'custom', path: ['AUTH_JWKS_URL'], message: 'is required when KES_ENV=production' });
      return z.NEVER;
    }
    return { ...config, AUTH_JWKS_URL: DEV_JWKS_URL };
  });

export type TendersConfig = z.output<typeof configSchema>;
