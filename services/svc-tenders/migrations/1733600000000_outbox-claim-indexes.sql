-- Up Migration
-- Cheaper strict-order check and stats for the relay (measured by npm run bench:relay).
--
-- Only a row that failed before (attempts > 0, waiting for its retry time) or a poison row can
-- block the later rows of its aggregate: a fresh row is due at insert. This partial index holds
-- just those rows — normally none — so the claim's per-candidate NOT EXISTS probe is an empty
-- index lookup instead of a walk over the aggregate's pending rows.
CREATE INDEX kes_outbox_events_blocking_idx ON kes_outbox_events (aggregate_id, id)
  WHERE status = 'poison' OR (status = 'pending' AND attempts > 0);

-- Poison rows for the stats gauges and the replay tool, without scanning the history.
CREATE INDEX kes_outbox_events_poison_idx ON kes_outbox_events (id) WHERE status = 'poison';

-- Down Migration
DROP INDEX kes_outbox_events_poison_idx;
DROP INDEX kes_outbox_events_blocking_idx;
