-- Tickets from devices of the rollout's scope that no wave had reached when
-- they were opened: the concurrent control a wave's ticket rate is judged
-- against. Tickets stored before cannot say, and count for no control.
ALTER TABLE tickets ADD COLUMN control INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tickets_control ON tickets (rollout, at) WHERE control;
