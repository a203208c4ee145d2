// Fastify app factory shared by every service: request ids, JSON errors without internals,
// zod validation, /health with named checks, /metrics, and graceful shutdown.
import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import {
  serializerCompiler,
  validatorCompiler,
  hasZodFastifySchemaValidationErrors,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { AppError } from './errors.js';
import { registerMetricsRoute } from './metrics.js';

export type HealthCheck = () => Promise<unknown>;

export interface HttpAppOptions {
  service: string;
  logger: Logger;
  /** Named dependency checks; /health answers 503 naming every one that throws. */
  healthChecks?: Record<string, HealthCheck>;
  /** Extra, non-failing facts for the /health body (e.g. consumer state). */
  healthDetails?: () => Record<string, unknown>;
  metrics?: Registry;
  bodyLimitBytes?: number;
  /** Trust X-Forwarded-* from a proxy in front (the gateway). */
  trustProxy?: boolean;
  /** Timeout of each health check. */
  healthTimeoutMs?: number;
}

export type HttpApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function createHttpApp(options: HttpAppOptions): HttpApp {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimitBytes ?? 256 * 1024,
    trustProxy: options.trustProxy ?? false,
    requestIdHeader: false,
    // Keep a caller's id when it looks like one, so one id follows a request across services.
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
  }).withTypeProvider<ZodTypeProvider>();

  // JSON only: anything else is refused with 415 instead of reaching a route as a string.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.setErrorHandler((error, request, reply) => {
    const { statusCode, body } = toErrorResponse(error);
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: body.error.code, statusCode }, body.error.message);
    return reply.status(statusCode).send(body);
  });

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: { code: 'ROUTE_NOT_FOUND', message: `No route ${request.method} ${request.url.split('?')[0]}` } }),
  );

  const checks = options.healthChecks ?? {};
  const timeoutMs = options.healthTimeoutMs ?? 3000;
  app.get('/health', { logLevel: 'warn' }, async (_request, reply) => {
    const results: Record<string, { ok: boolean; error?: string }> = {};
    await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), timeoutMs, name);
          results[name] = { ok: true };
        } catch (error) {
          results[name] = { ok: false, error: (error as Error).message || String(error) };
        }
      }),
    );
    const failing = Object.entries(results)
      .filter(([, r]) => !r.ok)
      .map(([name]) => name);
    const ok = failing.length === 0;
    return reply.status(ok ? 200 : 503).send({
      ok,
      service: options.service,
      ...(ok ? {} : { failing }),
      checks: results,
      ...(options.healthDetails?.() ?? {}),
      uptimeSeconds: Math.round(process.uptime()),
    });
  });

  if (options.metrics) registerMetricsRoute(app, options.metrics);
  return app;
}

export interface ErrorBody {
  error: { code: string; message: string; [key: string]: unknown };
}

/** Maps any thrown value to a status and a JSON body; 5xx messages never leak internals. */
export function toErrorResponse(error: unknown): { statusCode: number; body: ErrorBody } {
  if (error instanceof AppError) {
    const message = error.statusCode >= 500 ? 'Internal server error' : error.message;
    return { statusCode: error.statusCode, body: { error: { code: error.code, message, ...(error.details ?? {}) } } };
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    const first = error.validation[0];
    const field = fieldName(first?.instancePath, (first?.params as { issue?: { path?: unknown[] } })?.issue?.path);
    const where = error.validationContext ?? 'body';
    return {
      statusCode: 400,
      body: {
        error: {
          code: 'VALIDATION_FAILED',
          message: `${where}${field ? `.${field}` : ''}: ${first?.message ?? 'invalid'}`,
          field: field ? `${where}.${field}` : where,
        },
      },
    };
  }
  const fastifyError = error as FastifyError;
  const known: Record<string, [number, string]> = {
    FST_ERR_CTP_BODY_TOO_LARGE: [413, 'PAYLOAD_TOO_LARGE'],
    FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'BAD_REQUEST'],
    FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'EMPTY_BODY'],
    FST_ERR_CTP_INVALID_JSON_BODY: [400, 'INVALID_JSON'],
  };
  const mapped = fastifyError.code ? known[fastifyError.code] : undefined;
  if (mapped) return { statusCode: mapped[0], body: { error: { code: mapped[1], message: fastifyError.message } } };
  if (fastifyError.validation) {
    return { statusCode: 400, body: { error: { code: 'VALIDATION_FAILED', message: fastifyError.message } } };
  }
  // JSON.parse failures surface as SyntaxError with statusCode 400.
  const status = fastifyError.statusCode;
  if (status && status >= 400 && status < 500) {
    return { statusCode: status, body: { error: { code: fastifyError.code ?? 'BAD_REQUEST', message: fastifyError.message } } };
  }
  return { statusCode: 500, body: { error: { code: 'INTERNAL', message: 'Internal server error' } } };
}

function fieldName(instancePath: string | undefined, issuePath: unknown[] | undefined): string {
  if (issuePath && issuePath.length) return issuePath.map(String).join('.');
  return (instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
}

async function withTimeout<T>(promise: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${name} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export interface ServeOptions {
  port: number;
  host?: string;
  logger: Logger;
  /** Runs after the HTTP server closed (close pools, producers...). */
  onShutdown?: () => Promise<void>;
  shutdownTimeoutMs?: number;
}

/**
 * Listens and installs SIGTERM/SIGINT handlers: stop accepting, let in-flight requests end,
 * run onShutdown, exit 0; exit 1 if that takes longer than shutdownTimeoutMs.
 */
export async function serve(app: HttpApp, options: ServeOptions): Promise<void> {
  const { logger } = options;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error('shutdown timed out, exiting');
      process.exit(1);
    }, options.shutdownTimeoutMs ?? 10000);
    timer.unref();
    try {
      await app.close();
      await options.onShutdown?.();
      logger.info('stopped');
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  try {
    await app.listen({ port: options.port, host: options.host ?? '127.0.0.1' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      logger.error(`port ${options.port} is already in use: free it with \`node scripts/free-port.js ${options.port}\``);
      process.exit(1);
    }
    throw error;
  }
}
