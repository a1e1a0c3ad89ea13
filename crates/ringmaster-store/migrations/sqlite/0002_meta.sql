-- Small named values a driver keeps between runs (the simulated clock).
CREATE TABLE meta (
    rollout     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    PRIMARY KEY (rollout, key)
);
