-- tenantdrift state, version 6: findings remember whether Slack announced them.
--
-- RecordRunsWithOutbox stamps findings.notified_at (unused until now) when
-- it enqueues a new_findings or storm item announcing them, and a finding
-- still open and never announced is announced with the new ones of its
-- check. Findings that a Slack thread already announced are marked here,
-- with their first announcement, so that upgrading does not post their
-- drift again. Resolved ones are marked too: when they reopen, their
-- resolution still goes to the thread of their first announcement.
-- Findings announced only in a storm have no thread and are announced once
-- more.

UPDATE findings f SET notified_at = a.announced_at
FROM (
    SELECT tf.fingerprint, min(t.announced_at) AS announced_at
    FROM thread_findings tf JOIN threads t ON t.thread_key = tf.thread_key
    GROUP BY tf.fingerprint
) a
WHERE a.fingerprint = f.fingerprint AND f.notified_at IS NULL;
