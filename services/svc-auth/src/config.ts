// svc-auth configuration: validated once at start; nothing else reads process.env.
import { z } from 'zod';
import { KES_ENVS, defaultKesEnv } from '@kvary/platform/config';

const SPAN = /^(\d+)\s*(s|m|h|d)?$/;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** '900', '900s', '15m', '8h', '1d' -> seconds. */
export function parseDurationSeconds(value: string): number | undefined {
  const match = SPAN.exec(value.trim());
  if (!match) return undefined;
  const seconds = Number(match[1]) * UNIT_SECONDS[(match[2] ?? 's') as keyof typeof UNIT_SECONDS];
  return seconds > 0 ? seconds : undefined;
}

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      const seconds = parseDurationSeconds(value);
      if (seconds === undefined) {
        ctx.addIssue({ code: 'custom', message: 'must be a positive duration like 900, 15m, 8h or 1d' });
        return z.NEVER;
      }
      return seconds;
    });

export type { KesEnv } from '@kvary/platform/config';

/** The production scrypt cost (log2 N). Only KES_ENV=test may lower it (AUTH_SCRYPT_LOG_N). */
export const SCRYPT_LOG_N = 17;

export const configSchema = z
  .object({
    AUTH_PORT: z.coerce.number().int().min(0).max(65535).default(4100),
    HOST: z.string().min(1).default('127.0.0.1'),
    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/kvary'),
    DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
    // Production is the safe default; the dev script sets development.
    KES_ENV: z.enum(KES_ENVS).default(defaultKesEnv(import.meta.url)),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(1024 * 1024).default(16384),
    // Behind the gateway: take the client address from X-Forwarded-For (per-IP throttling).
    TRUST_PROXY: z.stringbool().default(false),

    AUTH_ISSUER: z.string().min(1).default('http://127.0.0.1:4100'),
    AUTH_AUDIENCE: z.string().min(1).default('kvary'),
    ACCESS_TOKEN_TTL: duration('15m'),
    SESSION_TTL: duration('8h'),
    AUTH_SIGNING_KEY_FILE: z.string().min(1).optional(),
    AUTH_PREVIOUS_SIGNING_KEY_FILE: z.string().min(1).optional(),
    AUTH_SCRYPT_LOG_N: z.coerce.number().int().min(10).max(20).optional(),

    LOGIN_MAX_ACCOUNT_FAILURES: z.coerce.number().int().min(1).max(1000).default(5),
    LOGIN_MAX_IP_FAILURES: z.coerce.number().int().min(1).max(100000).default(20),
    LOGIN_FAILURE_WINDOW: duration('15m'),

    OIDC_ISSUER_URL: z.url({ protocol: /^https?$/ }).optional(),
    OIDC_CLIENT_ID: z.string().min(1).default('kvary-dev'),
    OIDC_CLIENT_SECRET: z.string().min(1).optional(),
    OIDC_REDIRECT_URI: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:4020/api/v1/auth/oidc/callback'),
    OIDC_SCOPES: z.string().min(1).default('openid email profile'),
    // Relative paths only: an absolute URL here would make the callback an open redirect.
    OIDC_POST_LOGIN_REDIRECT: z
      .string()
      .regex(/^\/(?!\/)/, 'must be a path starting with a single "/"')
      .default('/'),
  })
  .transform((config, ctx) => {
    const production = config.KES_ENV === 'production';
    const fail = (variable: string, message: string) => {
      ctx.addIssue({ code: 'custom', path: [variable], message });
      return z.NEVER;
    };
    if (config.AUTH_SCRYPT_LOG_N !== undefined && config.KES_ENV !== 'test') {
      return fail('AUTH_SCRYPT_LOG_N', `may only be set when KES_ENV=test (the cost is fixed at ${SCRYPT_LOG_N})`);
    }
    if (production && !config.AUTH_SIGNING_KEY_FILE) return fail('AUTH_SIGNING_KEY_FILE', 'is required when KES_ENV=production');
    const issuerUrl = config.OIDC_ISSUER_URL ?? (production ? undefined : 'http://127.0.0.1:4001');
    if (production && issuerUrl?.startsWith('http:')) return fail('OIDC_ISSUER_URL', 'must use https when KES_ENV=production');
    const clientSecret = config.OIDC_CLIENT_SECRET ?? (production ? undefined : 'dev-secret');
    if (issuerUrl && !clientSecret) return fail('OIDC_CLIENT_SECRET', 'is required when KES_ENV=production and OIDC_ISSUER_URL is set');
    return {
      ...config,
      scryptLogN: config.AUTH_SCRYPT_LOG_N ?? SCRYPT_LOG_N,
      // Secure cookies everywhere except plain-http local development.
      secureCookies: config.KES_ENV !== 'development',
      oidc:
        issuerUrl && clientSecret
          ? {
              issuerUrl,
              clientId: config.OIDC_CLIENT_ID,
              clientSecret,
              redirectUri: config.OIDC_REDIRECT_URI,
              scopes: config.OIDC_SCOPES,
              postLoginRedirect: config.OIDC_POST_LOGIN_REDIRECT,
              allowInsecureRequests: !production,
            }
          : null,
    };
  });

export type AuthConfig = z.output<typeof configSchema>;
export type OidcSettings = NonNullable<AuthConfig['oidc']>;
