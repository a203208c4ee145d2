// A local OpenID Connect provider for development and tests (oidc-provider): one confidential
// client, one user, PKCE required, in-memory storage. The login page is a one-button form
// (no password): POST /interaction/<uid>/login signs the dev user in and grants the requested
// scopes in one step, so a test can drive the whole flow with plain HTTP. With autoLogin the
// GET of the interaction page does that at once (no form).
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Configuration, type InteractionResults } from 'oidc-provider';

export const DEV_CLIENT_ID = 'kvary-dev';
export const DEV_CLIENT_SECRET = 'dev-secret';
export const DEFAULT_REDIRECT_URIS = [
  'http://127.0.0.1:4020/api/v1/auth/oidc/callback',
  'http://127.0.0.1:4100/api/v1/auth/oidc/callback',
] as const;

export interface DevOidcUser {
  sub: string;
  email: string;
  emailVerified: boolean;
  name: string;
  /** Extra claims released with the profile scope (e.g. kvary_roles). */
  extraClaims?: Record<string, unknown>;
}

export const DEV_OIDC_USER: DevOidcUser = {
  sub: 'dev-oidc-user-1',
  email: 'oidc.user@kvary.dev',
  emailVerified: true,
  name: 'Dev OIDC User',
};

export interface DevOidcOptions {
  /** Default 4001; 0 picks a free port. */
  port?: number;
  host?: string;
  /** Default http://<host>:<port> (the port actually bound). */
  issuer?: string;
  /** Added to DEFAULT_REDIRECT_URIS. */
  redirectUris?: readonly string[];
  clientId?: string;
  clientSecret?: string;
  user?: DevOidcUser;
  /** Sign the user in on the GET of the interaction page, without the form. */
  autoLogin?: boolean;
  /** The provider refuses to start when this is 'production'. */
  kesEnv?: 'development' | 'test' | 'production';
  onError?: (error: unknown) => void;
}

export interface DevOidc {
  issuer: string;
  port: number;
  provider: Provider;
  close(): Promise<void>;
}

export async function startDevOidc(options: DevOidcOptions = {}): Promise<DevOidc> {
  if (options.kesEnv === 'production') {
    throw new Error('dev-oidc is a development-only OpenID provider and refuses to run with KES_ENV=production');
  }
  const host = options.host ?? '127.0.0.1';
  const server = createServer();
  // Listen first so port 0 resolves before the issuer (which embeds the port) is fixed.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 4001, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = options.issuer ?? `http://${host}:${port}`;
  try {
    const provider = await createProvider(issuer, options);
    const callback = provider.callback();
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const match = /^\/interaction\/([\w-]+)(\/login|\/abort)?$/.exec(new URL(req.url ?? '/', issuer).pathname);
      if (!match) return void callback(req, res);
      handleInteraction(provider, options, req, res, match[1] ?? '', match[2]).catch((error: unknown) => {
        options.onError?.(error);
        if (!res.headersSent) sendHtml(res, 400, page('Sign-in failed', `<p>${escapeHtml((error as Error).message)}</p>`));
      });
    });
    return { issuer, port, provider, close: () => closeServer(server) };
  } catch (error) {
    await closeServer(server);
    throw error;
  }
}

async function createProvider(issuer: string, options: DevOidcOptions): Promise<Provider> {
  const user = options.user ?? DEV_OIDC_USER;
  // Fresh keys per start: the provider keeps nothing across restarts (in-memory adapter).
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingJwk = { ...(await exportJWK(privateKey)), kid: `dev-oidc-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  const configuration: Configuration = {
    clients: [
      {
        client_id: options.clientId ?? DEV_CLIENT_ID,
        client_secret: options.clientSecret ?? DEV_CLIENT_SECRET,
        redirect_uris: [...new Set([...DEFAULT_REDIRECT_URIS, ...(options.redirectUris ?? [])])],
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    pkce: { required: () => true },
    jwks: { keys: [signingJwk as never] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'kvary_roles'] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
    findAccount: (_ctx, sub) =>
      sub === user.sub
        ? {
            accountId: user.sub,
            claims: () => ({ sub: user.sub, email: user.email, email_verified: user.emailVerified, name: user.name, ...user.extraClaims }),
          }
        : undefined,
  };
  const provider = new Provider(issuer, configuration);
  if (options.onError) {
    provider.on('server_error', (_ctx, error) => options.onError?.(error));
  }
  return provider;
}

async function handleInteraction(
  provider: Provider,
  options: DevOidcOptions,
  req: IncomingMessage,
  res: ServerResponse,
  uid: string,
  action: string | undefined,
): Promise<void> {
  const user = options.user ?? DEV_OIDC_USER;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (action === '/abort') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user cancelled the sign-in' });
  }
  if (action === undefined && req.method === 'GET' && !options.autoLogin) {
    return sendHtml(
      res,
      200,
      page(
        'Kvary dev sign-in',
        `<p>Development OpenID provider. Sign in to <b>${escapeHtml(String(details.params.client_id))}</b> as:</p>
<form method="post" action="/interaction/${uid}/login">
  <input type="hidden" name="login" value="${escapeHtml(user.sub)}">
  <button type="submit">${escapeHtml(user.name)} &lt;${escapeHtml(user.email)}&gt;</button>
</form>
<p><a href="/interaction/${uid}/abort">Cancel</a></p>`,
      ),
    );
  }
  if (action === '/login') {
    if (req.method !== 'POST') return sendHtml(res, 405, page('Method not allowed', '<p>POST the form.</p>'));
    const form = new URLSearchParams(await readBody(req));
    if (form.get('login') !== user.sub) throw new Error(`unknown dev user ${JSON.stringify(form.get('login'))}`);
  }
  const accountId = details.session?.accountId ?? user.sub;
  const result: InteractionResults = {};
  if (details.prompt.name === 'login') result.login = { accountId };
  // Consent in the same step: a first-party dev client, every requested scope is granted.
  const grant = details.grantId
    ? ((await provider.Grant.find(details.grantId)) ?? new provider.Grant({ accountId, clientId: String(details.params.client_id) }))
    : new provider.Grant({ accountId, clientId: String(details.params.client_id) });
  grant.addOIDCScope(String(details.params.scope ?? 'openid'));
  result.consent = { grantId: await grant.save() };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

function readBody(req: IncomingMessage, limit = 8192): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > limit) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
