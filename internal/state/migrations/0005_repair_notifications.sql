-- tenantdrift state, version 5: repairs are announced in Slack.
--
-- A repair run that wrote, failed or was held back by the breaker enqueues
-- one 'repair' item summarising it.

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('new_findings', 'resolved_reply', 'resolved_edit', 'reminder', 'storm',
                    'degraded', 'recovered', 'repair'));
