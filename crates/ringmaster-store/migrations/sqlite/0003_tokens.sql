-- API tokens: only a SHA-256 hash of each is kept; the token itself is shown once.
CREATE TABLE tokens (
    hash        TEXT    PRIMARY KEY,
    role        TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    revoked_at  TEXT
);
