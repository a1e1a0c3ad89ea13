-- Tokens get an id to list and revoke them by, an expiry and when they were
-- last used. Tokens made before this have no expiry (NULL): they keep
-- working until revoked.
ALTER TABLE tokens ADD COLUMN id BIGSERIAL UNIQUE;
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;
