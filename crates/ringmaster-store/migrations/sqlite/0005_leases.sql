-- Who drives the scheduler: one holder at a time, until its lease runs out.
CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_ms  INTEGER NOT NULL
);
