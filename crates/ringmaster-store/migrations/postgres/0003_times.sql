-- One representation of time: Unix milliseconds (UTC) in BIGINT columns,
-- converted from the RFC 3339 text the store wrote until now (which sorts
-- wrongly around fractional seconds). A time that does not parse stops the
-- migration; no data is lost. Sub-millisecond digits are dropped.
ALTER TABLE plan_versions ALTER COLUMN created_at TYPE BIGINT
    USING floor(extract(epoch FROM created_at::timestamptz) * 1000)::bigint;
ALTER TABLE waves ALTER COLUMN starts_at TYPE BIGINT
    USING floor(extract(epoch FROM starts_at::timestamptz) * 1000)::bigint;
ALTER TABLE waves ALTER COLUMN updated_at TYPE BIGINT
    USING floor(extract(epoch FROM updated_at::timestamptz) * 1000)::bigint;
ALTER TABLE transitions ALTER COLUMN at TYPE BIGINT
    USING floor(extract(epoch FROM at::timestamptz) * 1000)::bigint;
ALTER TABLE actions ALTER COLUMN done_at TYPE BIGINT
    USING floor(extract(epoch FROM done_at::timestamptz) * 1000)::bigint;
ALTER TABLE tickets ALTER COLUMN at TYPE BIGINT
    USING floor(extract(epoch FROM at::timestamptz) * 1000)::bigint;
ALTER TABLE feedback ALTER COLUMN at TYPE BIGINT
    USING floor(extract(epoch FROM at::timestamptz) * 1000)::bigint;
ALTER TABLE evaluations ALTER COLUMN at TYPE BIGINT
    USING floor(extract(epoch FROM at::timestamptz) * 1000)::bigint;
ALTER TABLE audit ALTER COLUMN at TYPE BIGINT
    USING floor(extract(epoch FROM at::timestamptz) * 1000)::bigint;
ALTER TABLE tokens ALTER COLUMN created_at TYPE BIGINT
    USING floor(extract(epoch FROM created_at::timestamptz) * 1000)::bigint;
ALTER TABLE tokens ALTER COLUMN revoked_at TYPE BIGINT
    USING floor(extract(epoch FROM revoked_at::timestamptz) * 1000)::bigint;
ALTER TABLE sessions ALTER COLUMN created_at TYPE BIGINT
    USING floor(extract(epoch FROM created_at::timestamptz) * 1000)::bigint;
ALTER TABLE outbox ALTER COLUMN created_at TYPE BIGINT
    USING floor(extract(epoch FROM created_at::timestamptz) * 1000)::bigint;
ALTER TABLE outbox ALTER COLUMN sent_at TYPE BIGINT
    USING floor(extract(epoch FROM sent_at::timestamptz) * 1000)::bigint;
