package state

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Kinds of outbox item, as stored in OutboxItem.Kind.
const (
	KindNewFindings   = "new_findings"
	KindResolvedReply = "resolved_reply"
	KindResolvedEdit  = "resolved_edit"
	KindReminder      = "reminder"
	KindStorm         = "storm"
	KindDegraded      = "degraded"
	KindRecovered     = "recovered"
	KindRepair        = "repair"
)

// OutboxLease is how long ClaimOutbox leases an item: a claimer that has
// neither started nor finished delivering it by then loses it, and the item
// is due again.
const OutboxLease = 5 * time.Minute

// ErrNotClaimed is returned by the Mark methods when the item is no longer
// pending (another claimer finished it).
var ErrNotClaimed = errors.New("outbox item is not pending")

// OutboxItem is one notification to deliver.
type OutboxItem struct {
	Kind    string // one of the Kind constants
	Check   string // the check it is about; empty for storm, degraded, recovered
	Channel string // the channel the enqueuer picked; empty leaves it to the deliverer
	// ThreadKey names the original message: a new_findings item is saved
	// under it, a reply or an edit goes to the message saved under it.
	//
	// Enqueuing an item with a thread key also keeps its Thread: a
	// new_findings item opens it with Fingerprints, a reminder stamps its
	// RemindedAt and a resolved_edit closes it, all at the run's finished
	// time.
	ThreadKey string
	// Fingerprints are the findings a new_findings or storm item
	// announces; other kinds leave it empty. Enqueuing either kind stamps
	// the findings' NotifiedAt with the run's finished time unless it is
	// set already.
	Fingerprints []string
	// Payload is what the message is rendered from, marshalled to JSON:
	// render inputs, never rendered blocks, never secrets. nil stores {}.
	Payload any
}

// OutboxEntry is a claimed outbox item.
type OutboxEntry struct {
	ID        int64
	CreatedAt time.Time
	Kind      string
	Check     string
	Channel   string
	ThreadKey string
	Payload   json.RawMessage
	// Attempts counts claims, this one included; StartDelivery takes it.
	Attempts int
	// LeaseUntil is when the claim lapses.
	LeaseUntil time.Time
	// Interrupted says that an earlier claimer started delivering the item
	// (StartDelivery) and never recorded how it ended: a post may have
	// reached Slack.
	Interrupted bool
	LastError   string
}

const insertOutboxSQL = `INSERT INTO {outbox}
	(created_at, kind, "check", channel, payload, thread_key, next_attempt_at)
	VALUES ($1, $2, $3, nullif($4, ''), $5, nullif($6, ''), $1)`

// Thread bookkeeping of enqueued items ($1 thread key, $2 the run's time).
const (
	openThreadSQL = `INSERT INTO {threads} AS t (thread_key, "check", announced_at) VALUES ($1, $3, $2)
		ON CONFLICT (thread_key) DO UPDATE SET "check" = excluded."check", announced_at = excluded.announced_at,
			reminded_at = NULL, closed_at = NULL`
	threadFindingsSQL = `INSERT INTO {thread_findings} (thread_key, fingerprint)
		SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`
	remindThreadSQL = `UPDATE {threads} SET reminded_at = $2 WHERE thread_key = $1`
	closeThreadSQL  = `UPDATE {threads} SET closed_at = $2 WHERE thread_key = $1`
)

// markNotifiedSQL stamps the findings $1 as announced at $2, unless they
// were announced before.
const markNotifiedSQL = `UPDATE {findings} SET notified_at = $2
	WHERE fingerprint = ANY($1::text[]) AND notified_at IS NULL`

// enqueue inserts items in tx, due now, and keeps their threads (see
// OutboxItem.ThreadKey) as of at, the run's finished time.
func (s *Store) enqueue(ctx context.Context, tx pgx.Tx, items []OutboxItem, at time.Time) error {
	now := s.now()
	for i, it := range items {
		payload := []byte("{}")
		if it.Payload != nil {
			var err error
			if payload, err = json.Marshal(it.Payload); err != nil {
				return fmt.Errorf("enqueue %s notification: marshal payload: %w", it.Kind, err)
			}
		}
		if _, err := tx.Exec(ctx, s.sql(insertOutboxSQL), now, it.Kind, clean(it.Check), clean(it.Channel),
			payload, clean(it.ThreadKey)); err != nil {
			return fmt.Errorf("enqueue notification %d (%s): %w", i, it.Kind, err)
		}
		if err := s.keepThread(ctx, tx, it, at); err != nil {
			return fmt.Errorf("enqueue notification %d (%s): %w", i, it.Kind, err)
		}
		if err := s.markNotified(ctx, tx, it, at); err != nil {
			return fmt.Errorf("enqueue notification %d (%s): %w", i, it.Kind, err)
		}
	}
	return nil
}

// markNotified stamps in tx the findings that it announces (see
// OutboxItem.Fingerprints) as announced at at.
func (s *Store) markNotified(ctx context.Context, tx pgx.Tx, it OutboxItem, at time.Time) error {
	if (it.Kind != KindNewFindings && it.Kind != KindStorm) || len(it.Fingerprints) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, s.sql(markNotifiedSQL), cleanAll(it.Fingerprints), at); err != nil {
		return fmt.Errorf("mark findings notified: %w", err)
	}
	return nil
}

// keepThread records in tx what enqueuing it at at does to its thread.
func (s *Store) keepThread(ctx context.Context, tx pgx.Tx, it OutboxItem, at time.Time) error {
	if it.ThreadKey == "" {
		return nil
	}
	key := clean(it.ThreadKey)
	var err error
	switch it.Kind {
	case KindNewFindings:
		if _, err = tx.Exec(ctx, s.sql(openThreadSQL), key, at, clean(it.Check)); err == nil {
			_, err = tx.Exec(ctx, s.sql(threadFindingsSQL), key, cleanAll(it.Fingerprints))
		}
	case KindReminder:
		_, err = tx.Exec(ctx, s.sql(remindThreadSQL), key, at)
	case KindResolvedEdit:
		_, err = tx.Exec(ctx, s.sql(closeThreadSQL), key, at)
	}
	if err != nil {
		return fmt.Errorf("keep slack thread: %w", err)
	}
	return nil
}

// claimOutboxSQL leases up to $2 due pending items, oldest first, skipping
// rows another claimer holds. An item waits while an earlier item of its
// thread is still pending, so a reply or an edit never overtakes the
// message it refers to.
const claimOutboxSQL = `
WITH due AS (
	SELECT o.id FROM {outbox} o
	WHERE o.state = 'pending' AND o.next_attempt_at <= $1
	  AND (o.thread_key IS NULL OR NOT EXISTS (
		SELECT 1 FROM {outbox} e
		WHERE e.thread_key = o.thread_key AND e.state = 'pending' AND e.id < o.id))
	ORDER BY o.id
	LIMIT $2
	FOR UPDATE SKIP LOCKED
)
UPDATE {outbox} o SET attempts = o.attempts + 1, next_attempt_at = $3
FROM due WHERE o.id = due.id
RETURNING o.id, o.created_at, o.kind, o."check", coalesce(o.channel, ''), coalesce(o.thread_key, ''),
	o.payload, o.attempts, o.next_attempt_at, o.sending_at IS NOT NULL, coalesce(o.last_error, '')`

// ClaimOutbox leases up to limit pending items that are due, oldest first,
// for OutboxLease: each one's attempts go up by one and it is not due
// again until the lease ends, so concurrent claimers (other replicas) never
// get the same item, and an item whose claimer dies reappears after the
// lease. Sent, uncertain and failed items are never claimed.
func (s *Store) ClaimOutbox(ctx context.Context, limit int) ([]OutboxEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	now := s.now()
	rows, err := s.pool.Query(ctx, s.sql(claimOutboxSQL), now, limit, now.Add(OutboxLease))
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	es, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (OutboxEntry, error) {
		var e OutboxEntry
		err := row.Scan(&e.ID, &e.CreatedAt, &e.Kind, &e.Check, &e.Channel, &e.ThreadKey,
			&e.Payload, &e.Attempts, &e.LeaseUntil, &e.Interrupted, &e.LastError)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	slices.SortFunc(es, func(a, b OutboxEntry) int { return cmp.Compare(a.ID, b.ID) })
	return es, nil
}

// StartDelivery records that the claim attempt of item id is about to make
// its request, and reports whether the claim still holds: false when the
// lease has lapsed or the item was claimed again or finished since, in
// which case the caller must not deliver it. A later claim of an item
// started and never marked sees Interrupted.
func (s *Store) StartDelivery(ctx context.Context, id int64, attempt int) (bool, error) {
	now := s.now()
	tag, err := s.pool.Exec(ctx, s.sql(`UPDATE {outbox} SET sending_at = $1
		WHERE id = $2 AND state = 'pending' AND attempts = $3 AND next_attempt_at > $1`), now, id, attempt)
	if err != nil {
		return false, fmt.Errorf("start delivery of outbox item %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// MarkSent records that item id was delivered as the Slack message ts
// (empty when there is none, as for an edit).
func (s *Store) MarkSent(ctx context.Context, id int64, ts string) error {
	return s.mark(ctx, "sent", id, `state = 'sent', sent_at = $2, slack_ts = nullif($3, ''), last_error = NULL`,
		s.now(), clean(ts))
}

// MarkUncertain records that item id may or may not have been delivered.
// It is never claimed again: an operator decides.
func (s *Store) MarkUncertain(ctx context.Context, id int64, reason string) error {
	return s.mark(ctx, "uncertain", id, `state = 'uncertain', last_error = $2`, clean(reason))
}

// MarkRetry records that delivering item id failed without reaching Slack
// and makes it due again at at.
func (s *Store) MarkRetry(ctx context.Context, id int64, reason string, at time.Time) error {
	return s.mark(ctx, "for retry", id, `next_attempt_at = $2, last_error = $3, sending_at = NULL`, at, clean(reason))
}

// MarkFailed records that item id cannot be delivered. It is never claimed
// again.
func (s *Store) MarkFailed(ctx context.Context, id int64, reason string) error {
	return s.mark(ctx, "failed", id, `state = 'failed', last_error = $2`, clean(reason))
}

// mark applies set ($1 is the id, args follow) to item id if it is still
// pending; ErrNotClaimed if it is not.
func (s *Store) mark(ctx context.Context, what string, id int64, set string, args ...any) error {
	tag, err := s.pool.Exec(ctx, s.sql(`UPDATE {outbox} SET `+set+` WHERE id = $1 AND state = 'pending'`),
		append([]any{id}, args...)...)
	if err != nil {
		return fmt.Errorf("mark outbox item %d %s: %w", id, what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("mark outbox item %d %s: %w", id, what, ErrNotClaimed)
	}
	return nil
}

// ThreadTS returns the channel and timestamp of the message saved under
// threadKey; ok is false when there is none.
func (s *Store) ThreadTS(ctx context.Context, threadKey string) (channel, ts string, ok bool, err error) {
	err = s.pool.QueryRow(ctx, s.sql(`SELECT channel, ts FROM {slack_messages} WHERE thread_key = $1`),
		clean(threadKey)).Scan(&channel, &ts)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("look up slack thread: %w", err)
	}
	return channel, ts, true, nil
}

// SaveThread saves the message ts in channel, posted at postedAt for check,
// under threadKey, replacing any message saved under it before.
func (s *Store) SaveThread(ctx context.Context, threadKey, channel, ts, checkName string, postedAt time.Time) error {
	if threadKey == "" {
		return errors.New("save slack thread: no thread key")
	}
	if _, err := s.pool.Exec(ctx, s.sql(`INSERT INTO {slack_messages} AS m
		(thread_key, channel, ts, "check", posted_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (thread_key) DO UPDATE SET channel = excluded.channel, ts = excluded.ts,
			"check" = excluded."check", posted_at = excluded.posted_at, resolved_at = NULL`),
		clean(threadKey), clean(channel), clean(ts), clean(checkName), postedAt); err != nil {
		return fmt.Errorf("save slack thread: %w", err)
	}
	return nil
}

// OutboxPending returns how many items are pending: due, leased or
// waiting for a retry.
func (s *Store) OutboxPending(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, s.sql(`SELECT count(*) FROM {outbox} WHERE state = 'pending'`)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending outbox items: %w", err)
	}
	return n, nil
}

// Enqueue adds items to the outbox, due now, in one transaction, apart
// from any run: notifications about tenantdrift itself (degraded,
// recovered).
func (s *Store) Enqueue(ctx context.Context, items ...OutboxItem) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("enqueue notifications: begin: %w", err)
	}
	defer rollback(ctx, tx)
	if err := s.enqueue(ctx, tx, items, s.now()); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("enqueue notifications: commit: %w", err)
	}
	return nil
}

// RecordDelivered adds to the outbox, already finished, an item that was
// delivered (or not) without it while the store was unreachable, created
// at createdAt: outcome is "sent", "uncertain" or "failed"; ts is the
// message's timestamp if any, reason why it was not sent. Such a row is
// never claimed.
func (s *Store) RecordDelivered(ctx context.Context, it OutboxItem, createdAt time.Time, outcome, ts, reason string) error {
	switch outcome {
	case "sent", "uncertain", "failed":
	default:
		return fmt.Errorf("record delivered %s notification: unknown outcome %q", it.Kind, outcome)
	}
	payload := []byte("{}")
	if it.Payload != nil {
		var err error
		if payload, err = json.Marshal(it.Payload); err != nil {
			return fmt.Errorf("record delivered %s notification: marshal payload: %w", it.Kind, err)
		}
	}
	var sentAt *time.Time
	if outcome == "sent" {
		now := s.now()
		sentAt = &now
	}
	if _, err := s.pool.Exec(ctx, s.sql(`INSERT INTO {outbox}
		(created_at, kind, "check", channel, payload, thread_key, next_attempt_at, state, attempts, sent_at, slack_ts, last_error)
		VALUES ($1, $2, $3, nullif($4, ''), $5, nullif($6, ''), $1, $7, 1, $8, nullif($9, ''), nullif($10, ''))`),
		createdAt, it.Kind, clean(it.Check), clean(it.Channel), payload, clean(it.ThreadKey), outcome, sentAt,
		clean(ts), clean(reason)); err != nil {
		return fmt.Errorf("record delivered %s notification: %w", it.Kind, err)
	}
	return nil
}
