// Classifies kafkajs failures. The distinction matters for correctness and for operators:
// - "infrastructure": the broker is unreachable or slow; no row is at fault, so the relay
//   backs off as a whole and does NOT count attempts (an outage must not poison everything).
// - "retriable": this record failed for a reason that may pass; counts an attempt.
// - "fatal": the record can never be accepted (too large, invalid); poison at once.
export type FailureKind = 'infrastructure' | 'retriable' | 'fatal';

export interface ClassifiedFailure {
  kind: FailureKind;
  /** Label for kes_outbox_publish_failures_total{reason}. */
  reason: string;
  message: string;
}

const FATAL_TYPES: Record<string, string> = {
  MESSAGE_TOO_LARGE: 'record_too_large',
  RECORD_LIST_TOO_LARGE: 'record_too_large',
  INVALID_RECORD: 'invalid_record',
  CORRUPT_MESSAGE: 'invalid_record',
  INVALID_TIMESTAMP: 'invalid_record',
  TOPIC_AUTHORIZATION_FAILED: 'not_authorized',
  INVALID_TOPIC_EXCEPTION: 'invalid_topic',
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 'invalid_record',
};

const INFRA_TYPES = new Set([
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
  'NOT_LEADER_OR_FOLLOWER',
  'REQUEST_TIMED_OUT',
  'NOT_ENOUGH_REPLICAS',
  'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
  'NETWORK_EXCEPTION',
  'BROKER_NOT_AVAILABLE',
  'COORDINATOR_NOT_AVAILABLE',
  'KAFKA_STORAGE_ERROR',
  'CONCURRENT_TRANSACTIONS',
]);

const INFRA_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSTimeout',
  'KafkaJSLockTimeout',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSServerDoesNotSupportApiKey',
  'RelaySendTimeout',
]);

interface KafkaLikeError {
  name?: string;
  type?: string;
  message?: string;
  originalError?: unknown;
  cause?: unknown;
  code?: string;
}

/** Follows originalError/cause wrappers (KafkaJSNumberOfRetriesExceeded etc.) to the root. */
function rootOf(error: unknown): KafkaLikeError {
  let current = error as KafkaLikeError;
  for (let depth = 0; depth < 5; depth++) {
    const next = (current?.originalError ?? current?.cause) as KafkaLikeError | undefined;
    if (!next || typeof next !== 'object') break;
    current = next;
  }
  return current ?? {};
}

export function classifyKafkaError(error: unknown): ClassifiedFailure {
  const root = rootOf(error);
  const top = (error ?? {}) as KafkaLikeError;
  const message = (top.message ?? String(error)).slice(0, 2000);
  const type = root.type ?? top.type;
  if (type && FATAL_TYPES[type]) return { kind: 'fatal', reason: FATAL_TYPES[type], message };
  if (type === 'UNKNOWN_TOPIC_OR_PARTITION') return { kind: 'retriable', reason: 'unknown_topic', message };
  if (type && INFRA_TYPES.has(type)) return { kind: 'infrastructure', reason: 'broker_unavailable', message };
  const name = root.name ?? top.name ?? '';
  if (INFRA_NAMES.has(name) || INFRA_NAMES.has(top.name ?? '')) {
    return { kind: 'infrastructure', reason: name.includes('Timeout') ? 'timeout' : 'broker_unavailable', message };
  }
  if (root.code && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(root.code)) {
    return { kind: 'infrastructure', reason: 'broker_unavailable', message };
  }
  return { kind: 'retriable', reason: 'publish_error', message };
}
