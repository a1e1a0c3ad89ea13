-- Dashboard sessions. A token signs in and gets a session; only a hash of
-- the session id is kept, with the form key (CSRF) that its forms carry.
CREATE TABLE sessions (
    hash        TEXT    PRIMARY KEY,
    role        TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    csrf        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    expires_ms  INTEGER NOT NULL
);

-- A wave's reported states, counted at each gate round: the chart of its
-- devices over time shows the figures the gates judged.
CREATE TABLE wave_samples (
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    counts      TEXT    NOT NULL,  -- JSON StateCounts
    PRIMARY KEY (rollout, version, idx, at_ms)
);

-- Notifications to deliver (communications, operator alerts) with their
-- delivery state. A message is queued once per key and destination, so a
-- driver that runs a step again does not send twice.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    rollout     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    channel     TEXT    NOT NULL,  -- webhook or smtp
    target      TEXT    NOT NULL,  -- the URL or the address
    audience    TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    body        TEXT    NOT NULL,  -- Markdown
    html        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    state       TEXT    NOT NULL,  -- pending, sent or failed
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_ms     INTEGER NOT NULL,
    last_error  TEXT,
    sent_at     TEXT,
    UNIQUE (rollout, key, channel, target)
);
CREATE INDEX outbox_due ON outbox (state, next_ms);
