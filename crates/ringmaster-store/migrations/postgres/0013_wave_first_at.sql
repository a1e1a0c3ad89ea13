-- The earliest report ever counted into a row of wave_state_counts: when a
-- wave started at or after it, none of the wave's latest states predates
-- the start, and the gate read needs no scan of the wave's states.
ALTER TABLE wave_state_counts ADD COLUMN first_at BIGINT;
UPDATE wave_state_counts c SET first_at = (
    SELECT min(l.reported_at) FROM status_latest l
    WHERE l.rollout = c.rollout AND l.wave = c.wave AND l.state = c.state);

CREATE OR REPLACE FUNCTION wave_state_recount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO wave_state_counts AS c (rollout, wave, state, devices, first_at)
        SELECT rollout, wave, state, count(*), min(reported_at) FROM new_rows
        WHERE wave IS NOT NULL
        GROUP BY rollout, wave, state ORDER BY rollout, wave, state
        ON CONFLICT (rollout, wave, state)
        DO UPDATE SET devices = c.devices + excluded.devices,
                      first_at = least(c.first_at, excluded.first_at);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO wave_state_counts AS c (rollout, wave, state, devices, first_at)
        SELECT rollout, wave, state, sum(n), min(at) FROM (
            SELECT rollout, wave, state, count(*) AS n, min(reported_at) AS at FROM new_rows
            WHERE wave IS NOT NULL GROUP BY rollout, wave, state
            UNION ALL
            SELECT rollout, wave, state, -count(*), NULL FROM old_rows
            WHERE wave IS NOT NULL GROUP BY rollout, wave, state) d
        GROUP BY rollout, wave, state HAVING sum(n) <> 0 ORDER BY rollout, wave, state
        ON CONFLICT (rollout, wave, state)
        DO UPDATE SET devices = c.devices + excluded.devices,
                      first_at = least(c.first_at, excluded.first_at);
    ELSE
        UPDATE wave_state_counts c SET devices = c.devices - d.n
        FROM (SELECT rollout, wave, state, count(*) AS n FROM old_rows
              WHERE wave IS NOT NULL GROUP BY rollout, wave, state) d
        WHERE c.rollout = d.rollout AND c.wave = d.wave AND c.state = d.state;
    END IF;
    RETURN NULL;
END $$;

-- A wave's states in the order they came instead of sorted by state and
-- time: a new state goes to the end of its wave's entries, not to a random
-- page (a third of a bulk ingest's time went into that index). Counting the
-- states that predate a wave's start scans the wave's entries, and only
-- when first_at says there can be any.
DROP INDEX status_latest_wave;
CREATE INDEX status_latest_wave ON status_latest (rollout, wave) INCLUDE (state, reported_at);
