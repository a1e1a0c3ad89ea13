-- Strata (a laptop model, an OS build…) whose devices a wave's gates held:
-- they leave the wave and the later ones while the hold stands. One row per
-- wave and stratum, so a round run again after a crash holds nothing twice.
-- Times are Unix milliseconds.
CREATE TABLE held_strata (
    rollout     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    stratum     TEXT    NOT NULL,
    devices     BLOB    NOT NULL,  -- serialised roaring bitmap of org rows
    evidence    TEXT    NOT NULL,
    rollback    INTEGER NOT NULL,  -- 1: taken out of the wave's group; 0: kept back
    held_at     INTEGER NOT NULL,
    removed_at  INTEGER,           -- when the connector took them out (rollback)
    released_at INTEGER,
    released_by TEXT,
    PRIMARY KEY (rollout, version, idx, stratum)
);
