// dev-oidc configuration: validated once at start; nothing else reads process.env.
import { z } from 'zod';

export const configSchema = z.object({
  DEV_OIDC_PORT: z.coerce.number().int().min(0).max(65535).default(4001),
  HOST: z.string().min(1).default('127.0.0.1'),
  DEV_OIDC_ISSUER: z.url({ protocol: /^https?$/ }).optional(),
  // Comma-separated, added to the gateway and svc-auth callbacks that are always registered.
  DEV_OIDC_REDIRECT_URIS: z
    .string()
    .default('')
    .transform((value, ctx) => {
      const uris = value
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean);
      for (const uri of uris) {
        if (!URL.canParse(uri)) {
          ctx.addIssue({ code: 'custom', message: `${JSON.stringify(uri)} is not a URL` });
          return z.NEVER;
        }
      }
      return uris;
    }),
  DEV_OIDC_CLIENT_ID: z.string().min(1).default('kvary-dev'),
  DEV_OIDC_CLIENT_SECRET: z.string().min(1).default('dev-secret'),
  DEV_OIDC_AUTO_LOGIN: z.stringbool().default(false),
  KES_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
