import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '@kvary/platform/config';
import { SCRYPT_LOG_N, configSchema, parseDurationSeconds } from './config.js';

const parse = (env: Record<string, string>) => parseConfig(configSchema, env);

describe('svc-auth config', () => {
  it('development: dev OIDC defaults, plain-http cookies, fixed scrypt cost', () => {
    const config = parse({ KES_ENV: 'development' });
    expect(config).toMatchObject({ AUTH_PORT: 4100, ACCESS_TOKEN_TTL: 900, SESSION_TTL: 28800, scryptLogN: SCRYPT_LOG_N, secureCookies: false });
    expect(config.oidc).toMatchObject({
      issuerUrl: 'http://127.0.0.1:4001',
      clientId: 'kvary-dev',
      clientSecret: 'dev-secret',
      redirectUri: 'http://127.0.0.1:4020/api/v1/auth/oidc/callback',
      postLoginRedirect: '/',
      allowInsecureRequests: true,
    });
  });

  it('the scrypt cost can be lowered only in test mode', () => {
    expect(parse({ KES_ENV: 'test', AUTH_SCRYPT_LOG_N: '14' }).scryptLogN).toBe(14);
    expect(() => parse({ KES_ENV: 'development', AUTH_SCRYPT_LOG_N: '14' })).toThrow(ConfigError);
    expect(() => parse({ KES_ENV: 'development', AUTH_SCRYPT_LOG_N: '14' })).toThrow(/AUTH_SCRYPT_LOG_N: may only be set when KES_ENV=test/);
  });

  it('production needs a signing key file, an https issuer and a client secret', () => {
    expect(parse({}).KES_ENV).toBe('development'); // unset: development when run from sources
    expect(() => parse({ KES_ENV: 'production' })).toThrow(/AUTH_SIGNING_KEY_FILE: is required when KES_ENV=production/);
    const base = { KES_ENV: 'production', AUTH_SIGNING_KEY_FILE: '/etc/kvary/auth.jwk.json' };
    const config = parse(base);
    expect(config.oidc).toBeNull();
    expect(config.secureCookies).toBe(true);
    expect(() => parse({ ...base, OIDC_ISSUER_URL: 'http://idp.example' })).toThrow(/OIDC_ISSUER_URL: must use https/);
    expect(() => parse({ ...base, OIDC_ISSUER_URL: 'https://idp.example' })).toThrow(/OIDC_CLIENT_SECRET/);
    expect(parse({ ...base, OIDC_ISSUER_URL: 'https://idp.example', OIDC_CLIENT_SECRET: 's' }).oidc?.allowInsecureRequests).toBe(false);
  });

  it('refuses an absolute post-login redirect (open redirect)', () => {
    expect(() => parse({ KES_ENV: 'development', OIDC_POST_LOGIN_REDIRECT: 'https://evil.example/' })).toThrow(/OIDC_POST_LOGIN_REDIRECT/);
    expect(() => parse({ KES_ENV: 'development', OIDC_POST_LOGIN_REDIRECT: '//evil.example/' })).toThrow(/OIDC_POST_LOGIN_REDIRECT/);
  });

  it('parses durations', () => {
    expect([parseDurationSeconds('900'), parseDurationSeconds('15m'), parseDurationSeconds('8h'), parseDurationSeconds('1d')]).toEqual([
      900, 900, 28800, 86400,
    ]);
    expect(parseDurationSeconds('0')).toBeUndefined();
    expect(parseDurationSeconds('soon')).toBeUndefined();
    expect(() => parse({ KES_ENV: 'development', ACCESS_TOKEN_TTL: 'soon' })).toThrow(/ACCESS_TOKEN_TTL/);
  });
});
