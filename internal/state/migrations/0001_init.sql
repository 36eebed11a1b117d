-- tenantdrift state, version 1: check runs and the findings they saw.
--
-- Migrations run with search_path set to the state schema only, so names
-- here are unqualified. "check" is a reserved word and is always quoted.

CREATE TABLE runs (
    id          bigserial   PRIMARY KEY,
    "check"     text        NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('ok', 'drift', 'error', 'skipped')),
    findings    int         NOT NULL DEFAULT 0,
    new         int         NOT NULL DEFAULT 0,
    resolved    int         NOT NULL DEFAULT 0,
    error       text
);

-- Latest run per check (LastRuns, LastSuccess).
CREATE INDEX runs_check_started_at_idx ON runs ("check", started_at DESC);

-- Retention (Prune).
CREATE INDEX runs_started_at_idx ON runs (started_at);

-- Every still-open finding is rewritten by each run of its check (last_seen),
-- so leave room on each page for HOT updates.
CREATE TABLE findings (
    fingerprint    text        PRIMARY KEY,
    "check"        text        NOT NULL,
    tenant_id      text        NOT NULL DEFAULT '',
    tenant_slug    text        NOT NULL DEFAULT '',
    database_name  text        NOT NULL DEFAULT '',
    field          text        NOT NULL DEFAULT '',
    reason         text        NOT NULL DEFAULT '',
    severity       text        NOT NULL DEFAULT '',
    expected       text        NOT NULL DEFAULT '',
    actual         text        NOT NULL DEFAULT '',
    message        text        NOT NULL DEFAULT '',
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    resolved_at    timestamptz,
    reopened_count int         NOT NULL DEFAULT 0,

    -- Slack notification state, written by the notifier.
    notified_at    timestamptz,
    notify_channel text,
    notify_ts      text,
    notify_state   jsonb       NOT NULL DEFAULT '{}'
) WITH (fillfactor = 80);

-- Open findings by check (resolution, OpenFindings).
CREATE INDEX findings_open_check_idx ON findings ("check") WHERE resolved_at IS NULL;

-- Retention (Prune).
CREATE INDEX findings_resolved_at_idx ON findings (resolved_at) WHERE resolved_at IS NOT NULL;
