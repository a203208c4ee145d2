// Pure parts of the gateway: configuration, locale negotiation, trace context, the header list.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '@kvary/platform/config';
import { DEV_JWKS_FILE_URL, configSchema } from '../src/config.js';
import { isIdentityHeader } from '../src/identity.js';
import { fromAcceptLanguage, resolveLocale } from '../src/locale.js';
import { gatewayTraceparent, parseTraceparent } from '../src/tracing.js';

describe('configSchema', () => {
  it('has working defaults', () => {
    const config = parseConfig(configSchema, { KES_ENV: 'development' });
    expect(config).toMatchObject({
      GATEWAY_PORT: 4020,
      HOST: '127.0.0.1',
      AUTH_URL: 'http://127.0.0.1:4100',
      TENDERS_URL: 'http://127.0.0.1:4060',
      AUTH_JWKS_URL: 'http://127.0.0.1:4100/.well-known/jwks.json',
      AUTH_JWKS_FALLBACK_URL: DEV_JWKS_FILE_URL,
      GATEWAY_ALLOWED_ORIGINS: ['http://127.0.0.1:4020', 'http://localhost:4020'],
      GATEWAY_BODY_LIMIT_BYTES: 1024 * 1024,
      GATEWAY_RATE_LIMIT_MAX: 600,
    });
  });

  it('never falls back to the dev key set outside development', () => {
    expect(parseConfig(configSchema, { KES_ENV: 'production' }).AUTH_JWKS_FALLBACK_URL).toBeUndefined();
    expect(parseConfig(configSchema, { KES_ENV: 'production', AUTH_JWKS_FALLBACK_URL: DEV_JWKS_FILE_URL }).AUTH_JWKS_FALLBACK_URL).toBeUndefined();
    expect(parseConfig(configSchema, { KES_ENV: 'test' }).AUTH_JWKS_FALLBACK_URL).toBeUndefined();
  });

  it('normalises allowed origins and names a bad one', () => {
    expect(parseConfig(configSchema, { GATEWAY_ALLOWED_ORIGINS: 'https://kvary.example , http://LOCALHOST:4020/' }).GATEWAY_ALLOWED_ORIGINS).toEqual([
      'https://kvary.example',
      'http://localhost:4020',
    ]);
    expect(() => parseConfig(configSchema, { GATEWAY_ALLOWED_ORIGINS: 'https://kvary.example/app' })).toThrow(ConfigError);
    try {
      parseConfig(configSchema, { AUTH_URL: 'ftp://x' });
      expect.unreachable();
    } catch (error) {
      expect((error as ConfigError).variable).toBe('AUTH_URL');
    }
  });
});

describe('locale', () => {
  it('reads Accept-Language by q-value, ignoring q=0 and unsupported languages', () => {
    expect(fromAcceptLanguage('en-GB;q=0.8, ka;q=0.9')).toBe('ka');
    expect(fromAcceptLanguage('ka;q=0, en;q=0.1')).toBe('en');
    expect(fromAcceptLanguage('de, fr;q=0.9')).toBeUndefined();
    expect(fromAcceptLanguage('de, *;q=0.5')).toBe('ka');
    expect(fromAcceptLanguage('')).toBeUndefined();
  });

  it('resolves query > cookie > Accept-Language > ka', () => {
    expect(resolveLocale({})).toEqual({ locale: 'ka', source: 'default' });
    expect(resolveLocale({ acceptLanguage: 'en' })).toEqual({ locale: 'en', source: 'accept-language' });
    expect(resolveLocale({ acceptLanguage: 'en', cookie: 'ka' })).toEqual({ locale: 'ka', source: 'cookie' });
    expect(resolveLocale({ acceptLanguage: 'ka', cookie: 'ka', query: { lang: 'EN' } })).toEqual({ locale: 'en', source: 'query' });
    expect(resolveLocale({ query: { lang: ['en', 'ka'] } })).toEqual({ locale: 'en', source: 'query' });
    expect(resolveLocale({ query: { lang: 'xx' }, cookie: 'zz' })).toEqual({ locale: 'ka', source: 'default' });
  });
});

describe('trace context', () => {
  it('accepts only valid traceparents', () => {
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentId: '00f067aa0ba902b7',
      flags: '01',
    });
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra')).toBeUndefined();
    expect(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra')).toBeDefined();
    expect(parseTraceparent('00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01')).toBeUndefined();
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01')).toBeUndefined();
  });

  it('makes a child span of a valid parent and a new trace otherwise', () => {
    const child = gatewayTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(child).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-(?!00f067aa0ba902b7)[0-9a-f]{16}-01$/);
    expect(gatewayTraceparent(undefined)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(gatewayTraceparent(undefined)).not.toBe(gatewayTraceparent(undefined));
  });
});

describe('identity headers', () => {
  it('covers the documented list and prefixes, case-insensitively', () => {
    for (const name of ['x-user-id', 'X-Roles', 'x-org-id', 'x-forwarded-user', 'x-auth-request-email', 'X-KES-Identity', 'x-kes-identity-roles', 'remote-user']) {
      expect(isIdentityHeader(name), name).toBe(true);
    }
    for (const name of ['authorization', 'cookie', 'content-type', 'x-request-id', 'traceparent', 'x-custom']) expect(isIdentityHeader(name), name).toBe(false);
  });
});
