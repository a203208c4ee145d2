// OIDC authorization requests in flight: state -> nonce + PKCE verifier, single use, 10 minutes.
import type { Queryable } from '@kvary/platform/postgres';

export const OIDC_STATE_TTL_SECONDS = 600;

export interface LoginState {
  state: string;
  nonce: string;
  codeVerifier: string;
}

export async function saveLoginState(db: Queryable, s: LoginState): Promise<void> {
  await db.query('INSERT INTO auth_oidc_login_states (state, nonce, code_verifier) VALUES ($1, $2, $3)', [s.state, s.nonce, s.codeVerifier]);
}

/**
 * Marks the state used and returns it, atomically: of two callbacks racing with one state,
 * exactly one gets the row. Unknown, expired and already used states all return undefined.
 */
export async function consumeLoginState(db: Queryable, state: string): Promise<LoginState | undefined> {
  const { rows } = await db.query<{ nonce: string; code_verifier: string }>(
    `UPDATE auth_oidc_login_states SET used_at = clock_timestamp()
     WHERE state = $1 AND used_at IS NULL AND created_at > clock_timestamp() - make_interval(secs => $2)
     RETURNING nonce, code_verifier`,
    [state, OIDC_STATE_TTL_SECONDS],
  );
  const row = rows[0];
  return row && { state, nonce: row.nonce, codeVerifier: row.code_verifier };
}

export async function purgeOldLoginStates(db: Queryable, batch = 1000): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM auth_oidc_login_states WHERE state IN (
       SELECT state FROM auth_oidc_login_states WHERE created_at < clock_timestamp() - make_interval(secs => $1) LIMIT $2)`,
    [OIDC_STATE_TTL_SECONDS * 2, batch],
  );
  return rowCount ?? 0;
}
