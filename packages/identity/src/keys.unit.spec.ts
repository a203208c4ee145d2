import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_JWKS_FILE, DEV_PRIVATE_KEY_FILE, defaultDevKeysDir, loadOrCreateDevKeys } from './keys.js';
import { createTokenVerifier } from './verifier.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kvary-devkeys-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('loadOrCreateDevKeys', () => {
  it('creates the key pair once and reuses it', async () => {
    const keysDir = path.join(dir, 'once');
    const first = await loadOrCreateDevKeys(keysDir);
    expect(first.created).toBe(true);
    const again = await loadOrCreateDevKeys(keysDir);
    expect(again.created).toBe(false);
    expect(again.signingKey.kid).toBe(first.signingKey.kid);
    const jwks = JSON.parse(await readFile(path.join(keysDir, DEV_JWKS_FILE), 'utf8'));
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kid: first.signingKey.kid, alg: 'ES256', use: 'sig', kty: 'EC' });
    expect(jwks.keys[0].d).toBeUndefined();
    expect((await stat(path.join(keysDir, DEV_PRIVATE_KEY_FILE))).mode & 0o077).toBe(0);
  });

  it('ends with one key when processes start together', async () => {
    const keysDir = path.join(dir, 'race');
    const results = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateDevKeys(keysDir)));
    expect(new Set(results.map((r) => r.signingKey.kid)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
  });

  it('refuses a key file without a private part', async () => {
    const keysDir = path.join(dir, 'broken');
    await loadOrCreateDevKeys(keysDir);
    const jwks = JSON.parse(await readFile(path.join(keysDir, DEV_JWKS_FILE), 'utf8'));
    await writeFile(path.join(keysDir, DEV_PRIVATE_KEY_FILE), JSON.stringify(jwks.keys[0]));
    await expect(loadOrCreateDevKeys(keysDir)).rejects.toThrow(/no private part/);
  });

  it('defaults to <repo>/.local/keys', () => {
    const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    expect(defaultDevKeysDir()).toBe(path.join(repo, '.local/keys'));
  });
});

describe('dev-token CLI', () => {
  it('prints a token the dev JWKS verifies', async () => {
    const keysDir = path.join(dir, 'cli');
    const here = path.dirname(fileURLToPath(import.meta.url));
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join(here, 'dev-token.ts'), '--role', 'PROCUREMENT_OFFICER', '--org', 'org-1', '--sub', 'user-1', '--keys-dir', keysDir],
      { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '--conditions=kvary-source' } },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const token = result.stdout.trim();
    const verifier = createTokenVerifier({
      jwksUrl: pathToFileURL(path.join(keysDir, DEV_JWKS_FILE)).href,
      issuer: 'http://127.0.0.1:4100',
      audience: 'kvary',
    });
    await expect(verifier.verify(token)).resolves.toMatchObject({ sub: 'user-1', orgId: 'org-1', roles: ['PROCUREMENT_OFFICER'] });
  });

  it('exits 2 with usage on a bad role', () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'dev-token.ts'), '--role', 'KING', '--sub', 'u'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '--conditions=kvary-source' },
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/unknown role\(s\): KING/);
  });
});
