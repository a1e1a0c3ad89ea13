-- A session remembers the token that signed it in, so that it ends when
-- that token is revoked or expires. Sessions from before cannot say which
-- token made them: they end here and their users sign in again.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN token_id BIGINT;
CREATE INDEX sessions_token ON sessions (token_id);
