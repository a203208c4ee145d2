// Configuration: dotenv + zod, validated once at start. Nothing else reads process.env.
import { config as loadDotenv } from 'dotenv';
import type { z } from 'zod';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`invalid configuration: ${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * Parses env against the schema; throws ConfigError naming the first bad variable.
 * Empty strings count as unset, so `FOO=` in .env falls back to the default.
 */
export function parseConfig<S extends z.ZodType>(schema: S, env: Env): z.output<S> {
  const cleaned: Env = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const variable = issue?.path.map(String).join('.') || '(config)';
  const received = cleaned[variable];
  const problem =
    received === undefined && issue?.code === 'invalid_type'
      ? 'is required but missing'
      : `${issue?.message ?? 'is invalid'}${received === undefined ? '' : ` (got ${JSON.stringify(received)})`}`;
  throw new ConfigError(variable, problem);
}

export interface LoadConfigOptions {
  /** Load a .env file from the working directory first (never overrides real env). Default true. */
  dotenv?: boolean;
}

/**
 * Loads and validates the configuration or stops the process with one line naming the
 * bad variable. Use parseConfig where a thrown error is wanted instead (tests, libraries).
 */
export function loadConfig<S extends z.ZodType>(
  schema: S,
  env: Env = process.env,
  options: LoadConfigOptions = {},
): z.output<S> {
  if ((options.dotenv ?? true) && env === process.env) loadDotenv({ quiet: true });
  try {
    return parseConfig(schema, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

export const KES_ENVS = ['development', 'test', 'production'] as const;
export type KesEnv = (typeof KES_ENVS)[number];

/**
 * The default runtime mode when KES_ENV is unset: `development` when the process runs
 * TypeScript sources (dev scripts, via tsx), `production` when it runs the tsc output (production
 * starts). Pass the caller's import.meta.url. An explicit KES_ENV always wins.
 */
export function defaultKesEnv(moduleUrl: string): KesEnv {
  return moduleUrl.endsWith('.ts') ? 'development' : 'production';
}
