// Shared by the operator tools: strict argument parsing (a bad argument exits 2 with one line),
// the final JSON line, and the exit-1 path for unreachable infrastructure.
import { userInfo } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;
type Values<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>>['values'];

/** node:util parseArgs (strict, no positionals) with its errors turned into one-line UsageErrors. */
export function parseCommandLine<O extends Options>(argv: string[], options: O): Values<O> {
  // parseArgs reads `--max-rows -5` as a missing value followed by an option; join such a pair so
  // the value check below reports the negative number itself.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    const option = arg.startsWith('--') ? options[arg.slice(2)] : undefined;
    if (option?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      args.push(`${arg}=${next}`);
      i++;
    } else args.push(arg);
  }
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const option = /'([^']+)'/.exec(message)?.[1] ?? message;
      throw new UsageError(`unknown option ${option} (see --help)`);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const value = /'([^']+)'/.exec(message)?.[1] ?? '';
      throw new UsageError(`unexpected argument ${JSON.stringify(value)} (see --help)`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const option = /--[\w-]+/.exec(message)?.[0] ?? 'an option';
      throw new UsageError(message.includes('argument missing') ? `${option} needs a value` : `${option} does not take a value`);
    }
    throw new UsageError(message.split('\n')[0] ?? 'invalid arguments');
  }
}

export function nonNegativeInteger(option: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`${option} must be a non-negative integer (got ${JSON.stringify(value)})`);
  }
  return Number(value);
}

export function positiveInteger(option: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`${option} must be a positive integer (got ${JSON.stringify(value)})`);
  }
  return Number(value);
}

export function nonEmpty(option: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '') throw new UsageError(`${option} must not be empty`);
  return value;
}

/**
 * Runs a tool: usage errors exit 2 with exactly one line on stderr; any other error exits 1
 * with one line on stderr and a final `{"ok":false,...}` JSON line on stdout.
 */
export async function runTool(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${name}: ${error.message}\n`);
      process.exitCode = EXIT_USAGE;
      return;
    }
    const message = (error as Error).message || String(error);
    process.stderr.write(`${name}: ${message}\n`);
    console.log(JSON.stringify({ ok: false, tool: name, error: message }));
    process.exitCode = EXIT_FAILURE;
  }
}

/** Rejects with `message` when the promise does not settle within ms. */
export async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The operator named on the command line, else the OS user. */
export function operatorName(explicit: string | undefined, env: { USER?: string; USERNAME?: string }): string {
  if (explicit ?? env.USER ?? env.USERNAME) return (explicit ?? env.USER ?? env.USERNAME)!;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
