// W3C Trace Context at the edge: continue a caller's valid trace with a new span of the gateway,
// or start a trace. svc-tenders stores the traceparent it receives on its outbox rows, so one
// trace id joins the HTTP request to the Kafka event it caused.
import { randomBytes } from 'node:crypto';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

export interface TraceContext {
  traceId: string;
  parentId: string;
  flags: string;
}

export function parseTraceparent(value: unknown): TraceContext | undefined {
  if (typeof value !== 'string') return undefined;
  const match = TRACEPARENT.exec(value.trim());
  if (!match) return undefined;
  const [, version = '', traceId = '', parentId = '', flags = '', rest] = match;
  // Version ff is invalid; version 00 allows nothing after the flags (future versions may).
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  return { traceId, parentId, flags };
}

const spanId = () => {
  let id: string;
  do id = randomBytes(8).toString('hex');
  while (/^0+$/.test(id));
  return id;
};

/** The traceparent of the gateway's span: a child of the caller's, or the root of a new trace. */
export function gatewayTraceparent(incoming: unknown): string {
  const parent = parseTraceparent(incoming);
  if (parent) return `00-${parent.traceId}-${spanId()}-${parent.flags}`;
  return `00-${randomBytes(16).toString('hex')}-${spanId()}-01`;
}
