-- tenantdrift state, version 4: what each Slack announcement announced.
--
-- RecordRunsWithOutbox writes a thread when it enqueues a new_findings
-- item, in the same transaction, with the fingerprints the message lists.
-- Later runs read them back to edit the message once all of them are
-- resolved (closed_at: the edit is enqueued, the thread is done) and to
-- remind still-open findings in the thread (reminded_at).

CREATE TABLE threads (
    -- The outbox item's thread_key; slack_messages holds the posted ts.
    thread_key   text        PRIMARY KEY,
    "check"      text        NOT NULL,
    -- The finished time of the run that announced it, and of the run that
    -- last enqueued a reminder in it.
    announced_at timestamptz NOT NULL,
    reminded_at  timestamptz,
    closed_at    timestamptz
);

-- Open threads of a check (every recorded run with notifications).
CREATE INDEX threads_open_check_idx ON threads ("check") WHERE closed_at IS NULL;

CREATE TABLE thread_findings (
    thread_key  text NOT NULL REFERENCES threads ON DELETE CASCADE,
    fingerprint text NOT NULL,
    PRIMARY KEY (thread_key, fingerprint)
);
