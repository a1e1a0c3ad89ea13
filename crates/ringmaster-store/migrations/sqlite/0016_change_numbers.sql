-- The watch reads what changed since its last check by a change number
-- instead of by report time: a report that arrives late (stamped before
-- the last check, e.g. a status export ingested the next day) is still
-- seen, and the index is written at its end instead of all over (report
-- times come in any order), which made every ingested report cost a
-- random B-tree insert.
ALTER TABLE status_latest ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
DROP INDEX status_latest_reported;
CREATE INDEX status_latest_seq ON status_latest (rollout, seq);
