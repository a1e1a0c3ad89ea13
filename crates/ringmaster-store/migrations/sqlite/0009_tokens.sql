-- Tokens get an id to list and revoke them by, an expiry and when they were
-- last used. Tokens made before this have no expiry (NULL): they keep
-- working until revoked. SQLite cannot add an INTEGER PRIMARY KEY to a
-- table, so the table is rebuilt and its rows copied.
CREATE TABLE tokens_new (
    id          INTEGER PRIMARY KEY,
    hash        TEXT    NOT NULL UNIQUE,
    role        TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,           -- NULL: never
    last_used_at INTEGER,
    revoked_at  INTEGER
);
INSERT INTO tokens_new (hash, role, label, created_at, revoked_at)
SELECT hash, role, label, created_at, revoked_at FROM tokens ORDER BY created_at, hash;
DROP TABLE tokens;
ALTER TABLE tokens_new RENAME TO tokens;
