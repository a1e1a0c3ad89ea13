-- Durable state of rollouts, as the SQLite store keeps it (see
-- migrations/sqlite for what each table is for). Times are RFC 3339 UTC
-- text, or Unix milliseconds where they are compared as numbers.

CREATE TABLE plan_versions (
    rollout     TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    created_at  TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    PRIMARY KEY (rollout, version)
);

CREATE TABLE waves (
    rollout     TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    idx         BIGINT  NOT NULL,
    name        TEXT    NOT NULL,
    phase       TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    seq         BIGINT  NOT NULL,
    members     BYTEA   NOT NULL,
    starts_at   TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (rollout, version, idx)
);

CREATE TABLE transitions (
    rollout     TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    idx         BIGINT  NOT NULL,
    seq         BIGINT  NOT NULL,
    at          TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    from_state  TEXT    NOT NULL,
    to_state    TEXT    NOT NULL,
    why         TEXT    NOT NULL,
    PRIMARY KEY (rollout, version, idx, seq)
);

CREATE TABLE actions (
    rollout     TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    idx         BIGINT  NOT NULL,
    seq         BIGINT  NOT NULL,
    pos         BIGINT  NOT NULL,
    effect      TEXT    NOT NULL,
    done_at     TEXT,
    attempts    BIGINT  NOT NULL DEFAULT 0,
    last_error  TEXT,
    PRIMARY KEY (rollout, version, idx, seq, pos)
);

CREATE TABLE status_latest (
    rollout     TEXT    NOT NULL,
    device      TEXT    NOT NULL,
    policy      TEXT    NOT NULL,
    wave        BIGINT,
    state       TEXT    NOT NULL,
    reported_at BIGINT  NOT NULL,
    PRIMARY KEY (rollout, device, policy)
);
CREATE INDEX status_latest_wave ON status_latest (rollout, wave, state);

CREATE TABLE status_history (
    rollout     TEXT    NOT NULL,
    device      TEXT    NOT NULL,
    policy      TEXT    NOT NULL,
    reported_at BIGINT  NOT NULL,
    state       TEXT    NOT NULL,
    PRIMARY KEY (rollout, device, policy, reported_at)
);

CREATE TABLE tickets (
    rollout     TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    user_id     TEXT,
    device      TEXT,
    category    TEXT,
    text        TEXT    NOT NULL,
    wave        BIGINT,
    PRIMARY KEY (rollout, id)
);

CREATE TABLE feedback (
    rollout     TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    user_id     TEXT,
    device      TEXT,
    score       BIGINT  NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment     TEXT    NOT NULL,
    wave        BIGINT,
    PRIMARY KEY (rollout, id)
);

CREATE TABLE evaluations (
    id          BIGSERIAL PRIMARY KEY,
    rollout     TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    idx         BIGINT  NOT NULL,
    at          TEXT    NOT NULL,
    body        TEXT    NOT NULL
);
CREATE INDEX evaluations_wave ON evaluations (rollout, version, idx, at);

CREATE TABLE audit (
    id          BIGSERIAL PRIMARY KEY,
    at          TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    rollout     TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail      TEXT    NOT NULL
);

CREATE TABLE meta (
    rollout     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    PRIMARY KEY (rollout, key)
);

CREATE TABLE tokens (
    hash        TEXT    PRIMARY KEY,
    role        TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    revoked_at  TEXT
);

CREATE TABLE sessions (
    hash        TEXT    PRIMARY KEY,
    role        TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    csrf        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    expires_ms  BIGINT  NOT NULL
);

CREATE TABLE wave_samples (
    rollout     TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    idx         BIGINT  NOT NULL,
    at_ms       BIGINT  NOT NULL,
    counts      TEXT    NOT NULL,
    PRIMARY KEY (rollout, version, idx, at_ms)
);

CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    rollout     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    audience    TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    html        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    attempts    BIGINT  NOT NULL DEFAULT 0,
    next_ms     BIGINT  NOT NULL,
    last_error  TEXT,
    sent_at     TEXT,
    UNIQUE (rollout, key, channel, target)
);
CREATE INDEX outbox_due ON outbox (state, next_ms);

CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_ms  BIGINT  NOT NULL
);
