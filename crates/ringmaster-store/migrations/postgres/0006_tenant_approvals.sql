-- Requests for a tenant's approval of a write (Intune's Multi Admin
-- Approval), one row per request, tied to the action whose write it holds.
CREATE TABLE tenant_approvals (
    rollout TEXT NOT NULL,
    request TEXT NOT NULL,
    version BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    pos BIGINT NOT NULL,
    object TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    retired BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (rollout, request)
);
CREATE INDEX tenant_approvals_wave ON tenant_approvals (rollout, version, idx);
