// Prints a development access token signed with the dev key (created under .local/keys on
// first use). Usage:
//   tsx --conditions=kvary-source packages/identity/src/dev-token.ts --role PROCUREMENT_OFFICER --org org-1 --sub user-1
import { parseArgs } from 'node:util';
import { loadOrCreateDevKeys } from './keys.js';
import { isRole, ROLES, type Role } from './roles.js';
import { signAccessToken } from './tokens.js';

const usage = `usage: dev-token --role ROLE [--role ROLE...] --sub USER [--org ORG] [--issuer URL] [--audience AUD] [--expires 1h] [--keys-dir DIR]
roles: ${ROLES.join(', ')}`;

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        role: { type: 'string', multiple: true },
        sub: { type: 'string' },
        org: { type: 'string' },
        issuer: { type: 'string', default: 'http://127.0.0.1:4100' },
        audience: { type: 'string', default: 'kvary' },
        expires: { type: 'string', default: '1h' },
        'keys-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) {
    console.log(usage);
    return;
  }
  const roles = values.role ?? [];
  if (roles.length === 0) fail('--role is required');
  const unknown = roles.filter((r) => !isRole(r));
  if (unknown.length) fail(`unknown role(s): ${unknown.join(', ')}`);
  if (!values.sub) fail('--sub is required');
  const keys = await loadOrCreateDevKeys(values['keys-dir']);
  const expiresIn = /^\d+$/.test(values.expires) ? Number(values.expires) : values.expires;
  const token = await signAccessToken(keys.signingKey, {
    sub: values.sub,
    roles: roles as Role[],
    orgId: values.org ?? null,
    issuer: values.issuer,
    audience: values.audience,
    expiresIn,
  });
  process.stdout.write(`${token}\n`);
}

function fail(message: string): never {
  process.stderr.write(`dev-token: ${message}\n${usage}\n`);
  process.exit(2);
}

await main();
