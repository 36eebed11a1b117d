-- tenantdrift state, version 2: the Slack notification outbox.
--
-- RecordRunWithOutbox writes outbox rows in the transaction that records
-- the findings they announce, so a restart or a Slack outage loses no
-- notification. A deliverer claims pending rows with FOR UPDATE SKIP
-- LOCKED, leasing them (next_attempt_at moves past the lease), and ends
-- each in sent, uncertain (may have been posted: never retried) or failed.

CREATE TABLE outbox (
    id              bigserial   PRIMARY KEY,
    created_at      timestamptz NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('new_findings', 'resolved_reply', 'resolved_edit',
                                                        'reminder', 'storm', 'degraded', 'recovered')),
    "check"         text        NOT NULL DEFAULT '',
    -- The channel the enqueuer picked; NULL leaves it to the deliverer.
    channel         text,
    -- The render inputs (severity, findings, counts, texts): never rendered
    -- blocks, never secrets.
    payload         jsonb       NOT NULL DEFAULT '{}',
    -- The key of the original message (slack_messages) a reply or an edit
    -- needs, and that a new_findings message is saved under.
    thread_key      text,
    state           text        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'sent', 'uncertain', 'failed')),
    attempts        int         NOT NULL DEFAULT 0,
    -- When a pending row is next due; while claimed, when its lease ends.
    next_attempt_at timestamptz NOT NULL,
    -- Set just before the request is made, cleared by a retry: a row
    -- claimed again with it set was interrupted mid-delivery.
    sending_at      timestamptz,
    last_error      text,
    sent_at         timestamptz,
    slack_ts        text
);

-- Due rows (ClaimOutbox).
CREATE INDEX outbox_state_next_attempt_at_idx ON outbox (state, next_attempt_at);

-- Earlier pending rows of the same thread (ClaimOutbox holds a reply back
-- until its original is delivered).
CREATE INDEX outbox_pending_thread_idx ON outbox (thread_key, id) WHERE state = 'pending';

-- The original message of each thread, for replies and edits.
CREATE TABLE slack_messages (
    thread_key  text        PRIMARY KEY,
    channel     text        NOT NULL,
    ts          text        NOT NULL,
    "check"     text        NOT NULL DEFAULT '',
    posted_at   timestamptz NOT NULL,
    resolved_at timestamptz
);
