-- The run state: alerts (pending, raised, resolved), when each device
-- entered the scope, and a sample of the service levels per check.
CREATE TABLE alerts (
    rollout     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    first_seen  INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    raised_at   INTEGER,
    resolved_at INTEGER,
    ack_by      TEXT,
    ack_at      INTEGER,
    PRIMARY KEY (rollout, key, first_seen)
);
CREATE INDEX alerts_open ON alerts (rollout, resolved_at);

CREATE TABLE scope_entries (
    rollout     TEXT    NOT NULL,
    device      TEXT    NOT NULL,
    entered_at  INTEGER NOT NULL,
    PRIMARY KEY (rollout, device)
);

CREATE TABLE runstate_samples (
    rollout     TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    PRIMARY KEY (rollout, at)
);

CREATE INDEX status_latest_reported ON status_latest (rollout, reported_at);
