-- tenantdrift state, version 3: the repair audit log.
--
-- A repair writes its row here in the transaction that changes the
-- landlord's registry (the state schema then lives in the landlord
-- database), so a crash leaves both or neither. Conflicts and failures,
-- which change nothing, are recorded on their own. Values are masked:
-- never a password, encrypted or not.

CREATE TABLE repairs (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL,
    action      text        NOT NULL,
    "check"     text        NOT NULL,
    fingerprint text        NOT NULL DEFAULT '',
    tenant_id   text        NOT NULL DEFAULT '',
    tenant_slug text        NOT NULL DEFAULT '',
    table_name  text        NOT NULL DEFAULT '',
    columns     text[]      NOT NULL DEFAULT '{}',
    before      text,
    after       text,
    -- Who or what applied it: the command and the host.
    applied_by  text        NOT NULL,
    result      text        NOT NULL CHECK (result IN ('applied', 'conflict', 'failed')),
    reason      text        NOT NULL DEFAULT '',
    -- Set once the affected check ran again: true when the finding is gone.
    verified    boolean
);

CREATE INDEX repairs_at_idx ON repairs (at);
