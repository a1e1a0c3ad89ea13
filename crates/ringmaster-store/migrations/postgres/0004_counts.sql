-- Reads that stay fast as reports grow (see the SQLite migration 0008):
-- the earliest Succeeded of each device and policy, and the devices per
-- wave and latest state kept by statement triggers in the transaction that
-- changes status_latest. Both are built here from the stored reports.

ALTER TABLE status_latest ADD COLUMN succeeded_at BIGINT;  -- earliest Succeeded report, Unix ms
UPDATE status_latest l SET succeeded_at = h.first
FROM (SELECT rollout, device, policy, min(reported_at) AS first FROM status_history
      WHERE state = 'succeeded' GROUP BY rollout, device, policy) h
WHERE h.rollout = l.rollout AND h.device = l.device AND h.policy = l.policy;

CREATE TABLE wave_state_counts (
    rollout     TEXT    NOT NULL,
    wave        BIGINT  NOT NULL,
    state       TEXT    NOT NULL,
    devices     BIGINT  NOT NULL,
    PRIMARY KEY (rollout, wave, state)
);
INSERT INTO wave_state_counts (rollout, wave, state, devices)
SELECT rollout, wave, state, count(*) FROM status_latest
WHERE wave IS NOT NULL GROUP BY rollout, wave, state;

-- One function for the three statements: rows gone count -1, rows there
-- count +1, summed per wave and state (in key order, so concurrent
-- ingests lock the count rows in the same order).
CREATE FUNCTION wave_state_recount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO wave_state_counts (rollout, wave, state, devices)
        SELECT rollout, wave, state, count(*) FROM new_rows WHERE wave IS NOT NULL
        GROUP BY rollout, wave, state ORDER BY rollout, wave, state
        ON CONFLICT (rollout, wave, state)
        DO UPDATE SET devices = wave_state_counts.devices + excluded.devices;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO wave_state_counts (rollout, wave, state, devices)
        SELECT rollout, wave, state, sum(n) FROM (
            SELECT rollout, wave, state, count(*) AS n FROM new_rows
            WHERE wave IS NOT NULL GROUP BY rollout, wave, state
            UNION ALL
            SELECT rollout, wave, state, -count(*) FROM old_rows
            WHERE wave IS NOT NULL GROUP BY rollout, wave, state) d
        GROUP BY rollout, wave, state HAVING sum(n) <> 0 ORDER BY rollout, wave, state
        ON CONFLICT (rollout, wave, state)
        DO UPDATE SET devices = wave_state_counts.devices + excluded.devices;
    ELSE
        UPDATE wave_state_counts c SET devices = c.devices - d.n
        FROM (SELECT rollout, wave, state, count(*) AS n FROM old_rows
              WHERE wave IS NOT NULL GROUP BY rollout, wave, state) d
        WHERE c.rollout = d.rollout AND c.wave = d.wave AND c.state = d.state;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER status_latest_added AFTER INSERT ON status_latest
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wave_state_recount();
CREATE TRIGGER status_latest_moved AFTER UPDATE ON status_latest
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wave_state_recount();
CREATE TRIGGER status_latest_removed AFTER DELETE ON status_latest
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION wave_state_recount();

DROP INDEX status_latest_wave;
CREATE INDEX status_latest_wave ON status_latest (rollout, wave, state, reported_at);
