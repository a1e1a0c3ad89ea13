-- The audit log and the outbox are read a page at a time (newest first on
-- the dashboard): these keep a page and its count off a full scan.
CREATE INDEX audit_rollout ON audit (rollout, id);
CREATE INDEX outbox_rollout ON outbox (rollout, id);
