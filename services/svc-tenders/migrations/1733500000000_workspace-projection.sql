-- Up Migration
-- The workspace projection consumer: an inbox (exactly-once effects), the projection tables,
-- and the audit of DLQ replays (replay:kes-dlq).

-- One row per applied event and consumer group, written in the same transaction as the
-- projection change: a redelivered event finds its row and has no second effect.
CREATE TABLE kes_consumer_inbox (
  consumer_group   text NOT NULL,
  event_id         uuid NOT NULL,
  ce_type          text NOT NULL,
  topic            text NOT NULL,
  kafka_partition  integer NOT NULL,
  kafka_offset     bigint NOT NULL,
  processed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (consumer_group, event_id)
);
-- Retention deletes by age in batches.
CREATE INDEX kes_consumer_inbox_processed_idx ON kes_consumer_inbox (processed_at);

-- The current state of each tender as far as the projection knows it. Counts by status are
-- derived from here (never stored as counters), so they cannot drift.
CREATE TABLE workspace_tenders (
  tender_id        uuid PRIMARY KEY,
  -- The buyer organisation.
  org_id           text NOT NULL,
  status           text NOT NULL CHECK (status IN ('draft', 'published', 'closed', 'awarded', 'cancelled')),
  -- NULL until an event carrying the title (created, updated, published) was applied.
  title            text,
  -- The highest tender version applied: an older event (e.g. a replayed one) never moves status back.
  tender_version   integer NOT NULL,
  updated_at       timestamptz NOT NULL
);

-- Which organisations and users a tender belongs to in their workspace: the buyer org and
-- every actor; for bids and awards also the supplier org.
CREATE TABLE workspace_tender_orgs (
  org_id           text NOT NULL,
  tender_id        uuid NOT NULL REFERENCES workspace_tenders (tender_id) ON DELETE CASCADE,
  role             text NOT NULL CHECK (role IN ('buyer', 'supplier')),
  PRIMARY KEY (org_id, tender_id)
);
CREATE TABLE workspace_tender_users (
  user_id          text NOT NULL,
  tender_id        uuid NOT NULL REFERENCES workspace_tenders (tender_id) ON DELETE CASCADE,
  org_id           text NOT NULL,
  PRIMARY KEY (user_id, tender_id)
);

-- Recent activity, one row per event and organisation that sees it.
CREATE TABLE workspace_activity (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id           text NOT NULL,
  user_id          text NOT NULL,
  event_id         uuid NOT NULL,
  ce_type          text NOT NULL,
  tender_id        uuid NOT NULL,
  title            text,
  summary          text NOT NULL,
  occurred_at      timestamptz NOT NULL,
  UNIQUE (event_id, org_id)
);
CREATE INDEX workspace_activity_org_idx ON workspace_activity (org_id, occurred_at DESC, id DESC);
CREATE INDEX workspace_activity_user_idx ON workspace_activity (user_id, occurred_at DESC, id DESC);

-- Audit of operator replays of dead-lettered messages (replay:kes-dlq --execute).
CREATE TABLE kes_dlq_replays (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  dlq_topic        text NOT NULL,
  dlq_partition    integer NOT NULL,
  dlq_offset       bigint NOT NULL,
  event_id         uuid,
  ce_type          text,
  original_topic   text NOT NULL,
  dlq_reason       text,
  replay_count     integer NOT NULL,
  progress_group   text NOT NULL,
  operator         text NOT NULL,
  reason           text NOT NULL,
  replayed_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX kes_dlq_replays_position_idx ON kes_dlq_replays (dlq_topic, dlq_partition, dlq_offset);

-- Down Migration
DROP TABLE kes_dlq_replays;
DROP TABLE workspace_activity;
DROP TABLE workspace_tender_users;
DROP TABLE workspace_tender_orgs;
DROP TABLE workspace_tenders;
DROP TABLE kes_consumer_inbox;
