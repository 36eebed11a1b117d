package state

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Thread is a Slack message that announced findings (a new_findings
// outbox item with a thread key), as a later run sees it. It is open until
// a resolved_edit item is enqueued for it.
type Thread struct {
	Key   string
	Check string
	// AnnouncedAt is the finished time of the run that enqueued the
	// announcement; RemindedAt that of the run that last enqueued a
	// reminder in the thread, nil when none did.
	AnnouncedAt time.Time
	RemindedAt  *time.Time
	// Findings are the findings the message announced as they stand now,
	// sorted like OpenFindings: Status is StatusOpen or StatusResolved
	// (ResolvedAt set). Findings pruned since are left out.
	Findings []Finding
}

// LastNotified is when the thread was last announced or reminded.
func (t Thread) LastNotified() time.Time {
	if t.RemindedAt != nil {
		return *t.RemindedAt
	}
	return t.AnnouncedAt
}

// Open reports whether any of the thread's findings is still open.
func (t Thread) Open() bool {
	for _, f := range t.Findings {
		if f.ResolvedAt == nil {
			return true
		}
	}
	return false
}

const openThreadsSQL = `SELECT t.thread_key, t."check", t.announced_at, t.reminded_at, ` + findingColumns + `
	FROM {threads} t
	JOIN {thread_findings} tf ON tf.thread_key = t.thread_key
	JOIN {findings} f ON f.fingerprint = tf.fingerprint
	WHERE t."check" = ANY($1) AND t.closed_at IS NULL
	ORDER BY t.announced_at, t.thread_key`

// openThreads returns the open threads of checks, by check, oldest first.
func (s *Store) openThreads(ctx context.Context, tx pgx.Tx, checks []string) (map[string][]Thread, error) {
	rows, err := tx.Query(ctx, s.sql(openThreadsSQL), checks)
	if err != nil {
		return nil, fmt.Errorf("query open slack threads: %w", err)
	}
	defer rows.Close()
	byCheck := map[string][]Thread{}
	var cur *Thread // rows come grouped by thread
	flush := func() {
		if cur != nil {
			sortFindings(cur.Findings)
			byCheck[cur.Check] = append(byCheck[cur.Check], *cur)
		}
	}
	for rows.Next() {
		var t Thread
		var f Finding
		dest := []any{&t.Key, &t.Check, &t.AnnouncedAt, &t.RemindedAt,
			&f.Fingerprint, &f.Check, &f.TenantID, &f.TenantSlug, &f.DatabaseName,
			&f.Field, &f.Reason, &f.Severity, &f.Expected, &f.Actual, &f.Message,
			&f.FirstSeen, &f.LastSeen, &f.ResolvedAt, &f.ReopenedCount, &f.NotifiedAt}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("query open slack threads: %w", err)
		}
		f.Status = StatusOpen
		if f.ResolvedAt != nil {
			f.Status = StatusResolved
		}
		if cur == nil || cur.Key != t.Key {
			flush()
			cur = &t
		}
		cur.Findings = append(cur.Findings, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query open slack threads: %w", err)
	}
	flush()
	return byCheck, nil
}
