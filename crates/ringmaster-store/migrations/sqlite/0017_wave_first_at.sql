-- The earliest report ever counted into a row of wave_state_counts: when a
-- wave started at or after it, none of the wave's latest states predates
-- the start, and the gate read needs no look at the wave's states.
ALTER TABLE wave_state_counts ADD COLUMN first_at INTEGER;
UPDATE wave_state_counts SET first_at = (
    SELECT min(l.reported_at) FROM status_latest l
    WHERE l.rollout = wave_state_counts.rollout AND l.wave = wave_state_counts.wave
      AND l.state = wave_state_counts.state);

DROP TRIGGER status_latest_added;
CREATE TRIGGER status_latest_added AFTER INSERT ON status_latest
WHEN new.wave IS NOT NULL
BEGIN
    INSERT INTO wave_state_counts (rollout, wave, state, devices, first_at)
    VALUES (new.rollout, new.wave, new.state, 1, new.reported_at)
    ON CONFLICT (rollout, wave, state) DO UPDATE SET
        devices = devices + 1, first_at = min(coalesce(first_at, excluded.first_at), excluded.first_at);
END;

DROP TRIGGER status_latest_moved;
CREATE TRIGGER status_latest_moved AFTER UPDATE OF wave, state ON status_latest
WHEN old.wave IS NOT new.wave OR old.state IS NOT new.state
BEGIN
    UPDATE wave_state_counts SET devices = devices - 1
    WHERE rollout = old.rollout AND wave = old.wave AND state = old.state;
    INSERT INTO wave_state_counts (rollout, wave, state, devices, first_at)
    SELECT new.rollout, new.wave, new.state, 1, new.reported_at WHERE new.wave IS NOT NULL
    ON CONFLICT (rollout, wave, state) DO UPDATE SET
        devices = devices + 1, first_at = min(coalesce(first_at, excluded.first_at), excluded.first_at);
END;

-- A wave's states by wave alone: a new state goes to the end of its wave's
-- entries, and a state or time that changes leaves the index alone (the
-- wave, state and time index took a delete and a random insert per report).
DROP INDEX status_latest_wave;
CREATE INDEX status_latest_wave ON status_latest (rollout, wave);
