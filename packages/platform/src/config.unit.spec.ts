import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, parseConfig } from './config.js';

const schema = z.object({
  PORT: z.coerce.number().int().min(1).max(65535).default(4060),
  DATABASE_URL: z.string().url(),
  MODE: z.enum(['development', 'test', 'production']).default('development'),
});

describe('parseConfig', () => {
  it('applies defaults and coerces numbers', () => {
    const config = parseConfig(schema, { DATABASE_URL: 'postgres://x@localhost/db' });
    expect(config).toEqual({ PORT: 4060, DATABASE_URL: 'postgres://x@localhost/db', MODE: 'development' });
  });

  it('names a missing variable', () => {
    expect(() => parseConfig(schema, {})).toThrow(new ConfigError('DATABASE_URL', 'is required but missing'));
  });

  it('names a bad variable and shows the bad value', () => {
    try {
      parseConfig(schema, { DATABASE_URL: 'postgres://x@localhost/db', PORT: 'eighty' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).variable).toBe('PORT');
      expect((error as Error).message).toContain('"eighty"');
    }
  });

  it('treats an empty string as unset', () => {
    const config = parseConfig(schema, { DATABASE_URL: 'postgres://x@localhost/db', PORT: '' });
    expect(config.PORT).toBe(4060);
  });
});

describe('loadConfig', () => {
  it('stops the process with one line naming the variable', () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const program = `
      import { loadConfig } from ${JSON.stringify(path.join(here, 'config.ts'))};
      import { z } from 'zod';
      loadConfig(z.object({ KES_ENV: z.enum(['development', 'test', 'production']) }), { KES_ENV: 'staging' });
      console.log('unreachable');
    `;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], {
      encoding: 'utf8',
      cwd: here,
    });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^invalid configuration: KES_ENV: .*"staging"/);
  });
});
