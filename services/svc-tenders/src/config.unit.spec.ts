import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '@kvary/platform/config';
import { DEV_JWKS_URL, configSchema } from './config.js';

describe('svc-tenders config', () => {
  it('has development defaults with the dev JWKS file under <repo>/.local/keys', () => {
    const config = parseConfig(configSchema, { KES_ENV: 'development' });
    expect(config).toMatchObject({
      TENDERS_PORT: 4060,
      HOST: '127.0.0.1',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/kvary',
      AUTH_ISSUER: 'http://127.0.0.1:4100',
      AUTH_AUDIENCE: 'kvary',
      BODY_LIMIT_BYTES: 65536,
      OUTBOX_NOTIFY: true,
      IDEMPOTENCY_RETENTION_HOURS: 24,
    });
    expect(config.AUTH_JWKS_URL).toBe(DEV_JWKS_URL);
    expect(DEV_JWKS_URL).toMatch(/^file:\/\/.*\/\.local\/keys\/jwks\.json$/);
  });

  it('defaults to development when run from sources, and requires AUTH_JWKS_URL in production', () => {
    expect(parseConfig(configSchema, {}).KES_ENV).toBe('development');
    expect(() => parseConfig(configSchema, { KES_ENV: 'production' })).toThrow(
      new ConfigError('AUTH_JWKS_URL', 'is required when KES_ENV=production'),
    );
    const config = parseConfig(configSchema, { KES_ENV: 'production', AUTH_JWKS_URL: 'https://auth.example/jwks.json' });
    expect(config.KES_ENV).toBe('production');
    expect(config.AUTH_JWKS_URL).toBe('https://auth.example/jwks.json');
  });

  it('parses booleans and refuses bad values naming the variable', () => {
    expect(parseConfig(configSchema, { KES_ENV: 'test', OUTBOX_NOTIFY: 'false' }).OUTBOX_NOTIFY).toBe(false);
    expect(() => parseConfig(configSchema, { KES_ENV: 'test', TENDERS_PORT: 'x' })).toThrow(/TENDERS_PORT/);
    expect(() => parseConfig(configSchema, { KES_ENV: 'test', AUTH_JWKS_URL: 'ftp://x/jwks' })).toThrow(/AUTH_JWKS_URL/);
    expect(() => parseConfig(configSchema, { KES_ENV: 'staging' })).toThrow(/KES_ENV/);
  });
});
