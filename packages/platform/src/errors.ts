// One error family for every service: a stable code, an HTTP status, and a cause for logs.
export interface AppErrorOptions {
  statusCode?: number;
  cause?: unknown;
  /** Extra fields that are safe to show to the client (e.g. the offending field). */
  details?: Record<string, unknown>;
}

export class AppError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.statusCode = options.statusCode ?? 500;
    this.details = options.details;
  }
}

export const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found`, { statusCode: 404 });
export const conflict = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(code, message, { statusCode: 409, details });
export const badRequest = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(code, message, { statusCode: 400, details });
export const forbidden = (message = 'You are not allowed to do this') =>
  new AppError('FORBIDDEN', message, { statusCode: 403 });
export const unauthorized = (message = 'Authentication required') =>
  new AppError('UNAUTHORIZED', message, { statusCode: 401 });
