// svc-tenders configuration: validated once at start; nothing else reads process.env.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { KES_ENVS, defaultKesEnv } from '@kvary/platform/config';
import { TENDERS_DLQ_TOPIC, TENDERS_TOPIC } from '@kvary/contracts/tenders';

/** `<repo>/.local/keys/jwks.json` (this file is services/svc-tenders/{src,dist}/config.*). */
export const DEV_JWKS_URL = pathToFileURL(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..', '.local/keys/jwks.json'),
).href;

const kafkaFields = {
  KAFKA_BROKERS: z.string().min(1).default('127.0.0.1:9092'),
  KAFKA_CLIENT_ID: z.string().min(1).default('svc-tenders'),
};

/** The workspace projection consumer (src/workspace/). */
const consumerFields = {
  /** embedded: inside the service process; standalone: `npm run consumer`; off: not at all. */
  CONSUMER_MODE: z.enum(['embedded', 'standalone', 'off']).default('embedded'),
  CONSUMER_TOPIC: z.string().min(1).default(TENDERS_TOPIC),
  CONSUMER_DLQ_TOPIC: z.string().min(1).default(TENDERS_DLQ_TOPIC),
  CONSUMER_GROUP: z.string().min(1).default('svc-tenders.workspace'),
  /** In-process retries of a failing transaction before the message is dead-lettered. */
  CONSUMER_MAX_RETRIES: z.coerce.number().int().min(0).max(50).default(5),
  CONSUMER_RETRY_BASE_MS: z.coerce.number().int().min(1).default(200),
  CONSUMER_RETRY_MAX_MS: z.coerce.number().int().min(1).default(10_000),
  CONSUMER_LAG_INTERVAL_MS: z.coerce.number().int().min(100).default(10_000),
  CONSUMER_INBOX_RETENTION_HOURS: z.coerce.number().positive().default(168),
  /** Activity rows kept per organisation (older ones are trimmed by the retention job). */
  WORKSPACE_ACTIVITY_KEEP: z.coerce.number().int().min(1).default(200),
  /** /health and /metrics of the standalone consumer process. */
  CONSUMER_PORT: z.coerce.number().int().min(0).max(65535).default(4062),
};

export const configSchema = z
  .object({
    TENDERS_PORT: z.coerce.number().int().min(1).max(65535).default(4060),
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
    /** How often the retention jobs (idempotency keys, consumer inbox, activity) run. */
    RETENTION_INTERVAL_MS: z.coerce.number().int().min(1000).default(5 * 60_000),
    ...kafkaFields,
    ...consumerFields,
    /** Recent-activity entries GET /api/v1/workspace returns. */
    WORKSPACE_ACTIVITY_LIMIT: z.coerce.number().int().min(1).max(200).default(20),
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

/** The standalone consumer process (src/consumer-main.ts). */
export const consumerConfigSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/kvary'),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(4),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  RETENTION_INTERVAL_MS: z.coerce.number().int().min(1000).default(5 * 60_000),
  ...kafkaFields,
  ...consumerFields,
});

export type ConsumerConfig = z.output<typeof consumerConfigSchema>;
/** What the consumer itself needs (shared by embedded and standalone modes). */
export type WorkspaceConsumerSettings = Pick<
  ConsumerConfig,
  | 'CONSUMER_TOPIC'
  | 'CONSUMER_DLQ_TOPIC'
  | 'CONSUMER_GROUP'
  | 'CONSUMER_MAX_RETRIES'
  | 'CONSUMER_RETRY_BASE_MS'
  | 'CONSUMER_RETRY_MAX_MS'
  | 'CONSUMER_LAG_INTERVAL_MS'
>;

/** The operator tools (src/tools/): infrastructure only, arguments come from the command line. */
export const toolsConfigSchema = z.object({
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/kvary'),
  KAFKA_BROKERS: z.string().min(1).default('127.0.0.1:9092'),
  KES_DLQ_TOPIC: z.string().min(1).default(TENDERS_DLQ_TOPIC),
  /** The consumer group that holds the replay progress (never joined, only committed to). */
  KES_DLQ_REPLAY_GROUP: z.string().min(1).default('kes-dlq-replay'),
  /** A message already replayed this many times is refused. */
  KES_DLQ_MAX_REPLAYS: z.coerce.number().int().min(1).default(3),
  /** Give up on an unreachable broker or database after this long. */
  KES_TOOL_TIMEOUT_MS: z.coerce.number().int().min(1000).default(10_000),
  USER: z.string().optional(),
  USERNAME: z.string().optional(),
});

export type ToolsConfig = z.output<typeof toolsConfigSchema>;
