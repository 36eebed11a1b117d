package state

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Results of a repair, as stored in RepairRecord.Result.
const (
	RepairApplied  = "applied"
	RepairConflict = "conflict"
	RepairFailed   = "failed"
)

// RepairRecord is one row of the repair audit log. Before and After are
// masked by the caller: never a password.
type RepairRecord struct {
	ID          int64
	At          time.Time
	Action      string
	Check       string
	Fingerprint string
	TenantID    string
	TenantSlug  string
	Table       string
	Columns     []string
	Before      *string
	After       *string
	AppliedBy   string
	Result      string
	Reason      string
	Verified    *bool
}

// Execer runs a statement: a pgx.Tx, to record a repair in the transaction
// that applies it.
type Execer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// RecordRepair appends r to the audit log through q (the repair's own
// transaction, which must be on the store's database), or the store's pool
// when q is nil. r.At is the store's clock when zero. It returns the row's
// id.
func (s *Store) RecordRepair(ctx context.Context, q Execer, r RepairRecord) (int64, error) {
	if q == nil {
		q = s.pool
	}
	if r.At.IsZero() {
		r.At = s.now()
	}
	cols := r.Columns
	if cols == nil {
		cols = []string{}
	}
	var id int64
	err := q.QueryRow(ctx, s.sql(`INSERT INTO {repairs}
		(at, action, "check", fingerprint, tenant_id, tenant_slug, table_name, columns, before, after, applied_by, result, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`),
		r.At, r.Action, r.Check, clean(r.Fingerprint), clean(r.TenantID), clean(r.TenantSlug), r.Table, cols,
		cleanPtr(r.Before), cleanPtr(r.After), clean(r.AppliedBy), r.Result, clean(r.Reason)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record repair: %w", err)
	}
	return id, nil
}

// VerifyRepair records whether the drift repair id fixed is gone when its
// check ran again; a repair that did not fix it becomes failed, with
// reason.
func (s *Store) VerifyRepair(ctx context.Context, id int64, fixed bool, reason string) error {
	_, err := s.pool.Exec(ctx, s.sql(`UPDATE {repairs} SET verified = $2,
		result = CASE WHEN $2 THEN result ELSE 'failed' END,
		reason = CASE WHEN $2 THEN reason ELSE $3 END WHERE id = $1`), id, fixed, clean(reason))
	if err != nil {
		return fmt.Errorf("record repair verification: %w", err)
	}
	return nil
}

// RepairRecorded reports whether the audit log holds row id: after a
// commit whose acknowledgement was lost, whether the repair committed.
func (s *Store) RepairRecorded(ctx context.Context, id int64) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, s.sql(`SELECT EXISTS (SELECT 1 FROM {repairs} WHERE id = $1)`), id).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up repair %d: %w", id, err)
	}
	return ok, nil
}

// Repairs returns the audit log's latest limit rows, newest first.
func (s *Store) Repairs(ctx context.Context, limit int) ([]RepairRecord, error) {
	rows, err := s.pool.Query(ctx, s.sql(`SELECT id, at, action, "check", fingerprint, tenant_id, tenant_slug,
		table_name, columns, before, after, applied_by, result, reason, verified
		FROM {repairs} ORDER BY id DESC LIMIT $1`), limit)
	if err != nil {
		return nil, fmt.Errorf("query repairs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RepairRecord, error) {
		var r RepairRecord
		err := row.Scan(&r.ID, &r.At, &r.Action, &r.Check, &r.Fingerprint, &r.TenantID, &r.TenantSlug,
			&r.Table, &r.Columns, &r.Before, &r.After, &r.AppliedBy, &r.Result, &r.Reason, &r.Verified)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("query repairs: %w", err)
	}
	return out, nil
}

func cleanPtr(s *string) *string {
	if s == nil {
		return nil
	}
	c := clean(*s)
	return &c
}
