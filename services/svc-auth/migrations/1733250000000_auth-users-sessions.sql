-- Up Migration
-- svc-auth: users, external identities, server-side sessions, login throttling and OIDC login
-- states. Tables carry an `auth_` prefix because every service shares the `kvary` database and
-- names like `users`/`sessions` are too likely to collide. Self-contained (no root objects), so
-- `npm -w @kvary/svc-auth run migrate` works on a fresh database.
CREATE TABLE auth_users (
  id             uuid PRIMARY KEY,
  -- Stored as given; uniqueness and lookups go through lower(email) (citext without the extension).
  email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND position('@' in email) > 1),
  display_name   text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  -- NULL for users who only log in through OIDC.
  password_hash  text,
  org_id         text,
  roles          text[] NOT NULL DEFAULT '{}'
                 CHECK (roles <@ ARRAY['GUEST', 'SUPPLIER', 'PROCUREMENT_OFFICER', 'CHAIN_OFFICER',
                                       'DOCUMENT_CUSTODIAN', 'GOVERNANCE_ADMIN']::text[]),
  disabled       boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX auth_users_email_key ON auth_users (lower(email));

-- One row per (issuer, subject): the stable identity an OIDC provider vouches for.
CREATE TABLE auth_user_identities (
  issuer      text NOT NULL,
  subject     text NOT NULL,
  user_id     uuid NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
  email       text,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_login_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (issuer, subject)
);
CREATE INDEX auth_user_identities_user_idx ON auth_user_identities (user_id);

-- The cookie carries a random 32-byte token; only its SHA-256 is stored, so a leaked table
-- (or backup) cannot be replayed as cookies.
CREATE TABLE auth_sessions (
  id_hash       bytea PRIMARY KEY CHECK (length(id_hash) = 32),
  user_id       uuid NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
  method        text NOT NULL CHECK (method IN ('password', 'oidc')),
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_seen_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at    timestamptz NOT NULL,
  revoked_at    timestamptz,
  ip            text,
  user_agent    text
);
CREATE INDEX auth_sessions_user_idx ON auth_sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX auth_sessions_expires_idx ON auth_sessions (expires_at);

-- Failed-login counters, one row per key ('account:<email>' or 'ip:<address>') and fixed
-- window. In Postgres so every svc-auth instance sees the same counts.
CREATE TABLE auth_login_throttle (
  key                text PRIMARY KEY,
  failures           integer NOT NULL CHECK (failures > 0),
  window_started_at  timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX auth_login_throttle_window_idx ON auth_login_throttle (window_started_at);

-- OIDC authorization requests in flight. Kept server-side (not in a signed cookie) so a state
-- is single use across instances (used_at), the PKCE verifier never leaves the server, and
-- no extra cookie-signing secret is needed; the browser is bound by an httpOnly cookie that
-- must carry the same state.
CREATE TABLE auth_oidc_login_states (
  state          text PRIMARY KEY CHECK (length(state) BETWEEN 32 AND 128),
  nonce          text NOT NULL,
  code_verifier  text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  used_at        timestamptz
);
CREATE INDEX auth_oidc_login_states_created_idx ON auth_oidc_login_states (created_at);

-- Down Migration
DROP TABLE IF EXISTS auth_oidc_login_states;
DROP TABLE IF EXISTS auth_login_throttle;
DROP TABLE IF EXISTS auth_sessions;
DROP TABLE IF EXISTS auth_user_identities;
DROP TABLE IF EXISTS auth_users;
