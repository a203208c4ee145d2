import { describe, expect, it } from 'vitest';
import { ConfigError } from '@kvary/platform/config';
import { parseRelayConfig } from './config.js';
import { classifyKafkaError } from './kafka-errors.js';
import { backoffMs } from './relay.js';

describe('classifyKafkaError', () => {
  it('treats connection trouble as infrastructure (no attempt counted)', () => {
    const wrapped = { name: 'KafkaJSNumberOfRetriesExceeded', message: 'retries', originalError: { name: 'KafkaJSConnectionError', message: 'ECONNREFUSED' } };
    expect(classifyKafkaError(wrapped)).toMatchObject({ kind: 'infrastructure', reason: 'broker_unavailable' });
    expect(classifyKafkaError({ name: 'KafkaJSRequestTimeoutError', message: 't' })).toMatchObject({ kind: 'infrastructure', reason: 'timeout' });
    expect(classifyKafkaError({ name: 'KafkaJSProtocolError', type: 'NOT_LEADER_OR_FOLLOWER', message: 'x' }).kind).toBe('infrastructure');
  });

  it('treats records the broker can never accept as fatal', () => {
    expect(classifyKafkaError({ name: 'KafkaJSProtocolError', type: 'MESSAGE_TOO_LARGE', message: 'big' })).toMatchObject({
      kind: 'fatal',
      reason: 'record_too_large',
    });
    expect(classifyKafkaError({ name: 'KafkaJSProtocolError', type: 'INVALID_RECORD', message: 'bad' }).kind).toBe('fatal');
  });

  it('treats an unknown topic and anything else as retriable', () => {
    expect(classifyKafkaError({ type: 'UNKNOWN_TOPIC_OR_PARTITION', message: 'no' })).toMatchObject({ kind: 'retriable', reason: 'unknown_topic' });
    expect(classifyKafkaError(new Error('weird'))).toMatchObject({ kind: 'retriable', reason: 'publish_error' });
  });
});

describe('backoffMs', () => {
  it('grows exponentially with jitter between half and the full step, capped', () => {
    expect(backoffMs(1, 100, 10000, () => 0)).toBe(50);
    expect(backoffMs(1, 100, 10000, () => 1)).toBe(100);
    expect(backoffMs(4, 100, 10000, () => 0)).toBe(400);
    expect(backoffMs(4, 100, 10000, () => 1)).toBe(800);
    expect(backoffMs(30, 100, 10000, () => 1)).toBe(10000);
  });
});

describe('relay config', () => {
  it('has working defaults', () => {
    const c = parseRelayConfig({});
    expect(c).toMatchObject({ RELAY_PORT: 4061, KES_RELAY_BATCH_SIZE: 500, KES_RELAY_LISTEN: true, KES_RELAY_MAX_ATTEMPTS: 10 });
  });

  it('names a bad variable', () => {
    expect(() => parseRelayConfig({ KES_RELAY_BATCH_SIZE: 'lots' })).toThrow(ConfigError);
    expect(() => parseRelayConfig({ KES_RELAY_LISTEN: 'maybe' })).toThrow(/KES_RELAY_LISTEN/);
  });
});
