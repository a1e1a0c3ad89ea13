-- Durable state of rollouts. Times are RFC 3339 UTC text, except report
-- times, which are Unix milliseconds so they compare as numbers; JSON columns hold
-- core types (wave states, effects) as the core serialises them.

CREATE TABLE plan_versions (
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    PRIMARY KEY (rollout, version)
);

CREATE TABLE waves (
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    phase       TEXT    NOT NULL,
    state       TEXT    NOT NULL,  -- JSON WaveState: the desired state
    seq         INTEGER NOT NULL,  -- transitions so far: the optimistic lock
    members     BLOB    NOT NULL,  -- serialised roaring bitmap of org rows
    starts_at   TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (rollout, version, idx)
);

CREATE TABLE transitions (
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    from_state  TEXT    NOT NULL,
    to_state    TEXT    NOT NULL,
    why         TEXT    NOT NULL,
    PRIMARY KEY (rollout, version, idx, seq)
);

-- Effects to carry out in the MDM, written with their transition: the
-- actual state. Done once; a crash between doing and marking repeats an
-- idempotent call, never a second wave.
CREATE TABLE actions (
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    pos         INTEGER NOT NULL,
    effect      TEXT    NOT NULL,
    done_at     TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    PRIMARY KEY (rollout, version, idx, seq, pos)
);

CREATE TABLE status_latest (
    rollout     TEXT    NOT NULL,
    device      TEXT    NOT NULL,
    policy      TEXT    NOT NULL,
    wave        INTEGER,
    state       TEXT    NOT NULL,
    reported_at INTEGER NOT NULL   -- Unix milliseconds: orders correctly
);
-- A rowid table keeps the wave index small (it points at rowids, not keys).
CREATE UNIQUE INDEX status_latest_key ON status_latest (rollout, device, policy);
CREATE INDEX status_latest_wave ON status_latest (rollout, wave, state);

CREATE TABLE status_history (
    rollout     TEXT    NOT NULL,
    device      TEXT    NOT NULL,
    policy      TEXT    NOT NULL,
    reported_at INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    PRIMARY KEY (rollout, device, policy, reported_at)
) WITHOUT ROWID;

CREATE TABLE tickets (
    rollout     TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    user_id     TEXT,
    device      TEXT,
    category    TEXT,
    text        TEXT    NOT NULL,
    wave        INTEGER,
    PRIMARY KEY (rollout, id)
);

CREATE TABLE feedback (
    rollout     TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    user_id     TEXT,
    device      TEXT,
    score       INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment     TEXT    NOT NULL,
    wave        INTEGER,
    PRIMARY KEY (rollout, id)
);

CREATE TABLE evaluations (
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    body        TEXT    NOT NULL   -- JSON Evaluation: metric, value, threshold, sample, window, outcome, sentence
);
CREATE INDEX evaluations_wave ON evaluations (rollout, version, idx, at);

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    rollout     TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail      TEXT    NOT NULL
);
