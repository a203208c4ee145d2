-- Up Migration
-- Tenders, bids and idempotency keys of svc-tenders. Self-contained: no root migration objects
-- are used, so `npm -w @kvary/svc-tenders run migrate` works on a fresh database.
CREATE TABLE tenders (
  id               uuid PRIMARY KEY,
  org_id           text NOT NULL,
  title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
  description      text NOT NULL DEFAULT '',
  budget_amount    numeric(15, 2) NOT NULL CHECK (budget_amount >= 0),
  budget_currency  char(3) NOT NULL,
  deadline         timestamptz NOT NULL,
  status           text NOT NULL DEFAULT 'draft'
                   CHECK (status IN ('draft', 'published', 'closed', 'awarded', 'cancelled')),
  awarded_bid_id   uuid,
  -- Set once: published_at decides public visibility, closed_at unseals the bids for the buyer.
  published_at     timestamptz,
  closed_at        timestamptz,
  cancel_reason    text,
  version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
  created_by       text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  CHECK ((status = 'awarded') = (awarded_bid_id IS NOT NULL))
);
-- Keyset pagination, newest first, with and without a status filter.
CREATE INDEX tenders_created_idx ON tenders (created_at DESC, id DESC);
CREATE INDEX tenders_status_created_idx ON tenders (status, created_at DESC, id DESC);
CREATE INDEX tenders_org_idx ON tenders (org_id, created_at DESC, id DESC);

CREATE TABLE bids (
  id               uuid PRIMARY KEY,
  tender_id        uuid NOT NULL REFERENCES tenders (id) ON DELETE CASCADE,
  supplier_org_id  text NOT NULL,
  submitted_by     text NOT NULL,
  amount           numeric(15, 2) NOT NULL CHECK (amount >= 0),
  currency         char(3) NOT NULL,
  note             text NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT bids_one_per_supplier UNIQUE (tender_id, supplier_org_id)
);

ALTER TABLE tenders ADD CONSTRAINT tenders_awarded_bid_fk FOREIGN KEY (awarded_bid_id) REFERENCES bids (id);

-- Idempotency-Key replay store, scoped per user and route. The row is inserted in the
-- command's transaction, so it exists iff the command (and its outbox event) committed.
CREATE TABLE tenders_idempotency_keys (
  user_id          text NOT NULL,
  route            text NOT NULL,
  idempotency_key  text NOT NULL,
  request_hash     text NOT NULL,
  response_status  integer NOT NULL,
  response_body    jsonb NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (user_id, route, idempotency_key)
);
-- Retention deletes by age in batches.
CREATE INDEX tenders_idempotency_keys_created_idx ON tenders_idempotency_keys (created_at);

-- Down Migration
DROP TABLE tenders_idempotency_keys;
ALTER TABLE tenders DROP CONSTRAINT tenders_awarded_bid_fk;
DROP TABLE bids;
DROP TABLE tenders;
