// Relay configuration: every knob is an environment variable with a default.
import { loadConfig as load, parseConfig, KES_ENVS, defaultKesEnv } from '@kvary/platform/config';
import { z } from 'zod';

const ms = (fallback: number) => z.coerce.number().int().min(0).default(fallback);
const positive = (fallback: number) => z.coerce.number().int().min(1).default(fallback);
const flag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');

export const relayConfigSchema = z.object({
  KES_ENV: z.enum(KES_ENVS).default(defaultKesEnv(import.meta.url)),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  RELAY_HOST: z.string().default('127.0.0.1'),
  RELAY_PORT: z.coerce.number().int().min(0).max(65535).default(4061),
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/kvary'),
  KAFKA_BROKERS: z.string().min(1).default('127.0.0.1:9092'),
  KAFKA_CLIENT_ID: z.string().default('kes-outbox-relay'),
  /** Rows claimed per batch (one Kafka request per batch, split only by size); 500 measured best. */
  KES_RELAY_BATCH_SIZE: positive(500).pipe(z.number().max(10000)),
  /** Polling backstop when no NOTIFY arrives. */
  KES_RELAY_POLL_INTERVAL_MS: positive(1000),
  KES_RELAY_LISTEN: flag(true),
  KES_RELAY_MAX_ATTEMPTS: positive(10),
  KES_RELAY_BACKOFF_BASE_MS: positive(500),
  KES_RELAY_BACKOFF_MAX_MS: positive(60000),
  /** Records above this size are poisoned without sending (the broker would refuse them). */
  KES_RELAY_MAX_MESSAGE_BYTES: positive(1_000_000),
  /** Upper bound of one produce request; larger batches are sent in several requests. */
  KES_RELAY_MAX_REQUEST_BYTES: positive(900_000),
  KES_RELAY_SEND_TIMEOUT_MS: positive(30000),
  KES_RELAY_STATS_INTERVAL_MS: positive(5000),
  KES_RELAY_REBALANCE_INTERVAL_MS: positive(2000),
  KES_RELAY_RETENTION_SECONDS: positive(7 * 24 * 3600),
  KES_RELAY_RETENTION_INTERVAL_MS: positive(60000),
  KES_RELAY_RETENTION_BATCH: positive(5000),
  KES_RELAY_SHUTDOWN_TIMEOUT_MS: ms(10000),
});

export type RelayConfig = z.output<typeof relayConfigSchema>;

export function loadRelayConfig(env?: Record<string, string | undefined>): RelayConfig {
  return load(relayConfigSchema, env);
}

export function parseRelayConfig(env: Record<string, string | undefined>): RelayConfig {
  return parseConfig(relayConfigSchema, env);
}

/** Postgres session settings of every relay connection (see main.ts). */
// plan_cache_mode: the claim's parameters (lanes, excluded ids) change its best plan; a cached
// generic plan scanned the excluded-id array for every candidate row (measured 8 ms per claim).
export const RELAY_SESSION_OPTIONS = '-c jit=off -c plan_cache_mode=force_custom_plan';
