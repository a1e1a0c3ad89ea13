-- The watch reads what changed since its last check by a change number
-- instead of by report time: a report that arrives late (stamped before
-- the last check) is still seen, and the index grows at its end instead
-- of taking a random insert per report. Ingests of one rollout take an
-- advisory lock, so change numbers commit in order.
ALTER TABLE status_latest ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
DROP INDEX status_latest_reported;
CREATE INDEX status_latest_seq ON status_latest (rollout, seq);
