-- One representation of time: Unix milliseconds (UTC) in INTEGER columns.
-- Until now most times were RFC 3339 text, which sorts wrongly around
-- fractional seconds ("08:00:00.5Z" before "08:00:00Z"). SQLite cannot
-- change a column's type, so each table with text times is rebuilt and its
-- rows copied, converting the text (as jiff wrote it: UTC, "Z", up to nine
-- fractional digits, truncated to milliseconds). A time that does not parse
-- leaves NULL and fails the NOT NULL constraint: the migration stops, no
-- data is lost. Evaluations gain an explicit id (their rowid) for their order.

CREATE TABLE plan_versions_new (
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    digest      TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    PRIMARY KEY (rollout, version)
);
INSERT INTO plan_versions_new (rollout, version, created_at, digest, text)
SELECT
    rollout,
    version,
    CASE WHEN instr(created_at, '.') = 0 THEN unixepoch(created_at) * 1000
         ELSE unixepoch(created_at) * 1000 + CAST(substr(replace(created_at, 'Z', '') || '000', instr(created_at, '.') + 1, 3) AS INTEGER) END,
    digest,
    text
FROM plan_versions;
DROP TABLE plan_versions;
ALTER TABLE plan_versions_new RENAME TO plan_versions;

CREATE TABLE waves_new (
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    phase       TEXT    NOT NULL,
    state       TEXT    NOT NULL,  -- JSON WaveState: the desired state
    seq         INTEGER NOT NULL,  -- transitions so far: the optimistic lock
    members     BLOB    NOT NULL,  -- serialised roaring bitmap of org rows
    starts_at   INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (rollout, version, idx)
);
INSERT INTO waves_new (rollout, version, idx, name, phase, state, seq, members, starts_at, updated_at)
SELECT
    rollout,
    version,
    idx,
    name,
    phase,
    state,
    seq,
    members,
    CASE WHEN instr(starts_at, '.') = 0 THEN unixepoch(starts_at) * 1000
         ELSE unixepoch(starts_at) * 1000 + CAST(substr(replace(starts_at, 'Z', '') || '000', instr(starts_at, '.') + 1, 3) AS INTEGER) END,
    CASE WHEN instr(updated_at, '.') = 0 THEN unixepoch(updated_at) * 1000
         ELSE unixepoch(updated_at) * 1000 + CAST(substr(replace(updated_at, 'Z', '') || '000', instr(updated_at, '.') + 1, 3) AS INTEGER) END
FROM waves;
DROP TABLE waves;
ALTER TABLE waves_new RENAME TO waves;

CREATE TABLE transitions_new (
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    from_state  TEXT    NOT NULL,
    to_state    TEXT    NOT NULL,
    why         TEXT    NOT NULL,
    PRIMARY KEY (rollout, version, idx, seq)
);
INSERT INTO transitions_new (rollout, version, idx, seq, at, actor, event, from_state, to_state, why)
SELECT
    rollout,
    version,
    idx,
    seq,
    CASE WHEN instr(at, '.') = 0 THEN unixepoch(at) * 1000
         ELSE unixepoch(at) * 1000 + CAST(substr(replace(at, 'Z', '') || '000', instr(at, '.') + 1, 3) AS INTEGER) END,
    actor,
    event,
    from_state,
    to_state,
    why
FROM transitions;
DROP TABLE transitions;
ALTER TABLE transitions_new RENAME TO transitions;

CREATE TABLE actions_new (
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    pos         INTEGER NOT NULL,
    effect      TEXT    NOT NULL,
    done_at     INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    PRIMARY KEY (rollout, version, idx, seq, pos)
);
INSERT INTO actions_new (rollout, version, idx, seq, pos, effect, done_at, attempts, last_error)
SELECT
    rollout,
    version,
    idx,
    seq,
    pos,
    effect,
    CASE WHEN instr(done_at, '.') = 0 THEN unixepoch(done_at) * 1000
         ELSE unixepoch(done_at) * 1000 + CAST(substr(replace(done_at, 'Z', '') || '000', instr(done_at, '.') + 1, 3) AS INTEGER) END,
    attempts,
    last_error
FROM actions;
DROP TABLE actions;
ALTER TABLE actions_new RENAME TO actions;

CREATE TABLE tickets_new (
    rollout     TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    user_id     TEXT,
    device      TEXT,
    category    TEXT,
    text        TEXT    NOT NULL,
    wave        INTEGER,
    PRIMARY KEY (rollout, id)
);
INSERT INTO tickets_new (rollout, id, at, user_id, device, category, text, wave)
SELECT
    rollout,
    id,
    CASE WHEN instr(at, '.') = 0 THEN unixepoch(at) * 1000
         ELSE unixepoch(at) * 1000 + CAST(substr(replace(at, 'Z', '') || '000', instr(at, '.') + 1, 3) AS INTEGER) END,
    user_id,
    device,
    category,
    text,
    wave
FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_new RENAME TO tickets;

CREATE TABLE feedback_new (
    rollout     TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    user_id     TEXT,
    device      TEXT,
    score       INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment     TEXT    NOT NULL,
    wave        INTEGER,
    PRIMARY KEY (rollout, id)
);
INSERT INTO feedback_new (rollout, id, at, user_id, device, score, comment, wave)
SELECT
    rollout,
    id,
    CASE WHEN instr(at, '.') = 0 THEN unixepoch(at) * 1000
         ELSE unixepoch(at) * 1000 + CAST(substr(replace(at, 'Z', '') || '000', instr(at, '.') + 1, 3) AS INTEGER) END,
    user_id,
    device,
    score,
    comment,
    wave
FROM feedback;
DROP TABLE feedback;
ALTER TABLE feedback_new RENAME TO feedback;

CREATE TABLE evaluations_new (
    id          INTEGER PRIMARY KEY,  -- insertion order: a round's goals in order
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    body        TEXT    NOT NULL   -- JSON GateResult, {"v": 1, ...}; rows without v are the same form
);
INSERT INTO evaluations_new (id, rollout, version, idx, at, body)
SELECT
    rowid,
    rollout,
    version,
    idx,
    CASE WHEN instr(at, '.') = 0 THEN unixepoch(at) * 1000
         ELSE unixepoch(at) * 1000 + CAST(substr(replace(at, 'Z', '') || '000', instr(at, '.') + 1, 3) AS INTEGER) END,
    body
FROM evaluations;
DROP TABLE evaluations;
ALTER TABLE evaluations_new RENAME TO evaluations;
CREATE INDEX evaluations_wave ON evaluations (rollout, version, idx, at);

CREATE TABLE audit_new (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    rollout     TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail      TEXT    NOT NULL
);
INSERT INTO audit_new (id, at, actor, rollout, action, detail)
SELECT
    id,
    CASE WHEN instr(at, '.') = 0 THEN unixepoch(at) * 1000
         ELSE unixepoch(at) * 1000 + CAST(substr(replace(at, 'Z', '') || '000', instr(at, '.') + 1, 3) AS INTEGER) END,
    actor,
    rollout,
    action,
    detail
FROM audit;
DROP TABLE audit;
ALTER TABLE audit_new RENAME TO audit;

CREATE TABLE tokens_new (
    hash        TEXT    PRIMARY KEY,
    role        TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
INSERT INTO tokens_new (hash, role, label, created_at, revoked_at)
SELECT
    hash,
    role,
    label,
    CASE WHEN instr(created_at, '.') = 0 THEN unixepoch(created_at) * 1000
         ELSE unixepoch(created_at) * 1000 + CAST(substr(replace(created_at, 'Z', '') || '000', instr(created_at, '.') + 1, 3) AS INTEGER) END,
    CASE WHEN instr(revoked_at, '.') = 0 THEN unixepoch(revoked_at) * 1000
         ELSE unixepoch(revoked_at) * 1000 + CAST(substr(replace(revoked_at, 'Z', '') || '000', instr(revoked_at, '.') + 1, 3) AS INTEGER) END
FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_new RENAME TO tokens;

CREATE TABLE sessions_new (
    hash        TEXT    PRIMARY KEY,
    role        TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    csrf        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
);
INSERT INTO sessions_new (hash, role, label, csrf, created_at, expires_ms)
SELECT
    hash,
    role,
    label,
    csrf,
    CASE WHEN instr(created_at, '.') = 0 THEN unixepoch(created_at) * 1000
         ELSE unixepoch(created_at) * 1000 + CAST(substr(replace(created_at, 'Z', '') || '000', instr(created_at, '.') + 1, 3) AS INTEGER) END,
    expires_ms
FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;

CREATE TABLE outbox_new (
    id          INTEGER PRIMARY KEY,
    rollout     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    channel     TEXT    NOT NULL,  -- webhook or smtp
    target      TEXT    NOT NULL,  -- the URL or the address
    audience    TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    body        TEXT    NOT NULL,  -- Markdown
    html        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    state       TEXT    NOT NULL,  -- pending, sent or failed
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_ms     INTEGER NOT NULL,
    last_error  TEXT,
    sent_at     INTEGER,
    UNIQUE (rollout, key, channel, target)
);
INSERT INTO outbox_new (id, rollout, key, channel, target, audience, subject, body, html, created_at, state, attempts, next_ms, last_error, sent_at)
SELECT
    id,
    rollout,
    key,
    channel,
    target,
    audience,
    subject,
    body,
    html,
    CASE WHEN instr(created_at, '.') = 0 THEN unixepoch(created_at) * 1000
         ELSE unixepoch(created_at) * 1000 + CAST(substr(replace(created_at, 'Z', '') || '000', instr(created_at, '.') + 1, 3) AS INTEGER) END,
    state,
    attempts,
    next_ms,
    last_error,
    CASE WHEN instr(sent_at, '.') = 0 THEN unixepoch(sent_at) * 1000
         ELSE unixepoch(sent_at) * 1000 + CAST(substr(replace(sent_at, 'Z', '') || '000', instr(sent_at, '.') + 1, 3) AS INTEGER) END
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, next_ms);
