// The OIDC relying party (openid-client v6): discovery on first use, cached, so svc-auth starts
// while the provider is down; provider failures become 502, refusals 401.
import * as client from 'openid-client';
import { AppError } from '@kvary/platform/errors';
import type { OidcSettings } from '../config.js';

export interface OidcClaims {
  issuer: string;
  subject: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  /** Raw claims, for role mapping. */
  claims: Record<string, unknown>;
}

export interface AuthorizationRequest {
  url: URL;
  state: string;
  nonce: string;
  codeVerifier: string;
}

export const providerUnavailable = (cause: unknown) =>
  new AppError('OIDC_PROVIDER_UNAVAILABLE', 'The identity provider cannot be reached; try again later', { statusCode: 502, cause });

const rejected = (message: string, cause?: unknown) => new AppError('OIDC_LOGIN_REJECTED', message, { statusCode: 401, cause });

export class OidcClient {
  private configuration: Promise<client.Configuration> | undefined;

  constructor(readonly settings: OidcSettings) {}

  /** Discovery once; a failed discovery is not cached, so the next request tries again. */
  private async config(): Promise<client.Configuration> {
    this.configuration ??= client
      .discovery(
        new URL(this.settings.issuerUrl),
        this.settings.clientId,
        undefined,
        client.ClientSecretBasic(this.settings.clientSecret),
        { execute: this.settings.allowInsecureRequests ? [client.allowInsecureRequests] : [], timeout: 5 },
      )
      .catch((error: unknown) => {
        this.configuration = undefined;
        throw providerUnavailable(error);
      });
    return this.configuration;
  }

  async authorizationRequest(): Promise<AuthorizationRequest> {
    const config = await this.config();
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.settings.redirectUri,
      response_type: 'code',
      scope: this.settings.scopes,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url, state, nonce, codeVerifier };
  }

  /**
   * Exchanges the code (with the PKCE verifier) and validates the ID token, nonce included.
   * `query` is the callback's query string; the URL is rebuilt on the configured redirect URI
   * because the browser reached us through the gateway.
   */
  async completeLogin(query: string, expected: { state: string; nonce: string; codeVerifier: string }): Promise<OidcClaims> {
    const config = await this.config();
    const currentUrl = new URL(this.settings.redirectUri);
    currentUrl.search = query;
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: expected.codeVerifier,
        expectedState: expected.state,
        expectedNonce: expected.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      throw classify(error);
    }
    const idClaims = tokens.claims();
    if (!idClaims) throw rejected('The identity provider returned no ID token');
    let claims: Record<string, unknown> = { ...idClaims };
    // Providers that follow OIDC Core 5.4 put scope claims (email, name) in userinfo only.
    if (typeof claims.email !== 'string' && config.serverMetadata().userinfo_endpoint) {
      try {
        claims = { ...(await client.fetchUserInfo(config, tokens.access_token, idClaims.sub)), ...claims };
      } catch (error) {
        throw classify(error);
      }
    }
    return {
      issuer: idClaims.iss,
      subject: idClaims.sub,
      email: typeof claims.email === 'string' ? claims.email : null,
      emailVerified: claims.email_verified === true,
      name: typeof claims.name === 'string' ? claims.name : null,
      claims,
    };
  }
}

/** Network trouble and provider 5xx are the provider's fault (502); everything else is a refusal. */
function classify(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof TypeError) return providerUnavailable(error);
  if (error instanceof client.AuthorizationResponseError) {
    return new AppError('OIDC_LOGIN_FAILED', `The identity provider refused the login (${error.error})`, { statusCode: 400, cause: error });
  }
  if (error instanceof client.ResponseBodyError) {
    if (error.status >= 500) return providerUnavailable(error);
    return rejected(`The identity provider rejected the authorization code (${error.error})`, error);
  }
  const response = (error as { cause?: unknown }).cause;
  if (response instanceof Response && response.status >= 500) return providerUnavailable(error);
  if ((error as { name?: string }).name === 'TimeoutError' || (error as { name?: string }).name === 'AbortError') {
    return providerUnavailable(error);
  }
  return rejected(`The identity provider response failed validation: ${(error as Error).message}`, error);
}
