-- Up Migration
-- The transactional outbox. Rows are written by the outbox writer inside domain transactions
-- and published by kes-outbox-relay. See docs/outbox.md for the ordering argument.
CREATE TABLE kes_outbox_events (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id         uuid NOT NULL UNIQUE,
  aggregate_type   text NOT NULL,
  aggregate_id     text NOT NULL,
  event_type       text NOT NULL,
  event_version    integer NOT NULL CHECK (event_version > 0),
  topic            text NOT NULL,
  source           text NOT NULL,
  payload          jsonb NOT NULL,
  headers          jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- Relays own lanes exclusively (advisory locks); one aggregate always maps to one lane.
  lane             smallint NOT NULL GENERATED ALWAYS AS ((hashtext(aggregate_id) & 2147483647) % 64) STORED,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'dispatched', 'poison')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_error       text,
  -- The writing transaction, for diagnosis (which rows committed together).
  xact_id          xid8 NOT NULL DEFAULT pg_current_xact_id(),
  -- clock_timestamp(), not now(): now() is the transaction start, which would overstate lag.
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  dispatched_at    timestamptz,
  kafka_partition  integer,
  kafka_offset     bigint
);

-- The claim walks pending rows in id order (filtering the relay's lanes). Partial, so millions of
-- dispatched rows cost nothing here.
CREATE INDEX kes_outbox_events_claim_idx ON kes_outbox_events (id) WHERE status = 'pending';
-- "Is an earlier row of this aggregate still unfinished?" (strict per-aggregate order).
CREATE INDEX kes_outbox_events_unfinished_idx ON kes_outbox_events (aggregate_id, id) WHERE status <> 'dispatched';

-- Audit of operator replays of poison rows (replay:kes-outbox-poison).
CREATE TABLE kes_outbox_replays (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  outbox_id       bigint NOT NULL,
  event_id        uuid NOT NULL,
  operator        text NOT NULL,
  reason          text NOT NULL,
  previous_error  text,
  previous_attempts integer NOT NULL,
  replayed_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX kes_outbox_replays_outbox_idx ON kes_outbox_replays (outbox_id);

-- Down Migration
DROP TABLE kes_outbox_replays;
DROP TABLE kes_outbox_events;
