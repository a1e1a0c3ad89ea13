-- Two-person approvals. The requester of a plan version's waves is whoever
-- started driving it (first one wins); a wave's approvals are kept one per
-- person (`person`: the name trimmed and in lower case), so approving twice
-- counts once. Times are Unix milliseconds.
CREATE TABLE requesters (
    rollout     TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    requester   TEXT    NOT NULL,
    at          BIGINT  NOT NULL,
    PRIMARY KEY (rollout, version)
);

CREATE TABLE approvals (
    rollout     TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    idx         BIGINT  NOT NULL,
    person      TEXT    NOT NULL,
    approver    TEXT    NOT NULL,  -- the name as given
    at          BIGINT  NOT NULL,
    PRIMARY KEY (rollout, version, idx, person)
);
