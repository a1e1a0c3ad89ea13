-- Reads that stay fast as reports grow. Until now every wave page, gate
-- round and /metrics scrape counted a wave's latest states row by row, and
-- the run-state watch looked each device up in the history for an earlier
-- Succeeded. Now:
-- - status_latest keeps when each device and policy first reported
--   Succeeded, so "was it Succeeded before its latest state" is one compare;
-- - wave_state_counts keeps the devices per wave and latest state, kept
--   right by triggers in the transaction that changes status_latest.
-- Both are built here from the stored reports.

ALTER TABLE status_latest ADD COLUMN succeeded_at INTEGER;  -- earliest Succeeded report, Unix ms
UPDATE status_latest SET succeeded_at = (
    SELECT min(h.reported_at) FROM status_history h
    WHERE h.rollout = status_latest.rollout AND h.device = status_latest.device
      AND h.policy = status_latest.policy AND h.state = 'succeeded');

CREATE TABLE wave_state_counts (
    rollout     TEXT    NOT NULL,
    wave        INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    devices     INTEGER NOT NULL,
    PRIMARY KEY (rollout, wave, state)
) WITHOUT ROWID;
INSERT INTO wave_state_counts (rollout, wave, state, devices)
SELECT rollout, wave, state, count(*) FROM status_latest
WHERE wave IS NOT NULL GROUP BY rollout, wave, state;

CREATE TRIGGER status_latest_added AFTER INSERT ON status_latest
WHEN new.wave IS NOT NULL
BEGIN
    INSERT INTO wave_state_counts (rollout, wave, state, devices)
    VALUES (new.rollout, new.wave, new.state, 1)
    ON CONFLICT (rollout, wave, state) DO UPDATE SET devices = devices + 1;
END;

CREATE TRIGGER status_latest_moved AFTER UPDATE OF wave, state ON status_latest
WHEN old.wave IS NOT new.wave OR old.state IS NOT new.state
BEGIN
    UPDATE wave_state_counts SET devices = devices - 1
    WHERE rollout = old.rollout AND wave = old.wave AND state = old.state;
    INSERT INTO wave_state_counts (rollout, wave, state, devices)
    SELECT new.rollout, new.wave, new.state, 1 WHERE new.wave IS NOT NULL
    ON CONFLICT (rollout, wave, state) DO UPDATE SET devices = devices + 1;
END;

CREATE TRIGGER status_latest_removed AFTER DELETE ON status_latest
WHEN old.wave IS NOT NULL
BEGIN
    UPDATE wave_state_counts SET devices = devices - 1
    WHERE rollout = old.rollout AND wave = old.wave AND state = old.state;
END;

-- A wave's states reported before a given time (its start) are subtracted
-- from the counts: a range of this index, empty in the usual case.
DROP INDEX status_latest_wave;
CREATE INDEX status_latest_wave ON status_latest (rollout, wave, state, reported_at);
