package repair

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantdrift/tenantdrift/internal/probe"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

// Kinds of write.
const (
	writeInsert = iota + 1
	writeUpdate
)

// write is what Apply does for an action, with the values the plan saw.
type write struct {
	kind     int
	tenantID string

	// insert: columns and values; exprs maps the index of a column whose
	// value is an SQL expression (now(), gen_random_uuid()) to it.
	insertCols  []string
	insertVals  []any
	insertTypes []string // SQL type of each column, "" when unknown
	exprs       map[int]string
	// probe, when set, must succeed first: the database a row will name
	// accepts exactly its credentials.
	probe *probe.Target

	// update: table.col goes from before to after on the row keyCol =
	// keyVal, only if it still holds before (compare-and-swap) ...
	table  pgx.Identifier
	keyCol string
	keyVal string
	col    string
	before *string
	after  *string
	// ... casCol still holds casVal ...
	casCol string
	casVal *time.Time
	// ... and guardTable.guardCol, on the row guardKeyCol = guardKeyVal,
	// still holds after (the source of truth has not moved); for an
	// insert, guardValue (the tenant still names the database), with
	// guardNotDeleted, when set, NULL (the tenant is not soft-deleted).
	guardTable      pgx.Identifier
	guardKeyCol     string
	guardKeyVal     string
	guardCol        string
	guardValue      *string
	guardNotDeleted string

	touchUpdatedAt bool
}

// repairLockClass is the first key of the pg_advisory_xact_lock an action
// takes on its tenant, so two replicas racing on one tenant take turns
// ("rp").
const repairLockClass int32 = 0x7270

// Applier writes the actions Decide cleared.
type Applier struct {
	// DB is the landlord.
	DB *pgxpool.Pool
	// Store is the state store, in the same database as DB: each action
	// commits with its audit row.
	Store *state.Store
	// Prober probes a database before its row is inserted.
	Prober *probe.Prober
	// AppliedBy names who applies, for the audit log.
	AppliedBy string
	// Logger hears about each outcome; nil discards.
	Logger *slog.Logger
	// BeforeCommit, when set, runs inside each action's transaction after
	// its writes, for tests that break the connection there.
	BeforeCommit func(ctx context.Context, tx pgx.Tx) error
}

// Apply writes every action with Apply set, one transaction each, and sets
// its Status (applied, conflict or failed) and Reason. Actions not cleared
// are returned unchanged. One action's failure never stops the others.
func (ap *Applier) Apply(ctx context.Context, actions []Action) []Action {
	log := ap.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for i := range actions {
		a := &actions[i]
		if !a.Apply {
			continue
		}
		if ctx.Err() != nil {
			a.Status, a.Reason = StatusSkipped, "stopped before this action: "+ctx.Err().Error()
			continue
		}
		a.Status, a.Reason = ap.one(ctx, a)
		l := log.With("action", a.Action, "tenant_id", a.TenantID, "tenant_slug", a.TenantSlug, "result", a.Status)
		if a.Status == StatusApplied {
			l.Info("repair applied", "table", a.Table, "column", a.Column)
		} else {
			l.Warn("repair not applied", "reason", a.Reason)
		}
		if a.Status != StatusApplied {
			// Nothing was written: record the attempt on its own.
			if _, err := ap.Store.RecordRepair(context.WithoutCancel(ctx), nil, ap.record(a)); err != nil {
				l.Error("record repair attempt", "err", err)
			}
		}
	}
	return actions
}

func (ap *Applier) record(a *Action) state.RepairRecord {
	return state.RepairRecord{
		Action: a.Action, Check: a.Check, Fingerprint: a.Fingerprint, TenantID: a.TenantID, TenantSlug: a.TenantSlug,
		Table: a.Table, Columns: strings.Split(a.Column, ","), Before: a.Before, After: a.After,
		AppliedBy: ap.AppliedBy, Result: a.Status, Reason: a.Reason,
	}
}

// one applies a, returning its status and reason.
func (ap *Applier) one(ctx context.Context, a *Action) (status, reason string) {
	w := a.write
	if w.probe != nil {
		res := ap.Prober.One(ctx, *w.probe)
		if !res.OK() {
			msg := fmt.Sprintf("database %s did not accept the credentials (%s", w.probe.Database, res.Reason)
			if res.SQLState != "" {
				msg += ", SQLSTATE " + res.SQLState
			}
			return StatusFailed, msg + "): nothing written"
		}
	}
	tx, err := ap.DB.Begin(ctx)
	if err != nil {
		return StatusFailed, "begin: " + err.Error()
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", repairLockClass, w.tenantID); err != nil {
		return StatusFailed, "lock tenant: " + err.Error()
	}
	var changed bool
	switch w.kind {
	case writeInsert:
		changed, err = ap.insert(ctx, tx, a)
	case writeUpdate:
		changed, err = ap.update(ctx, tx, w)
	default:
		err = errors.New("no write planned")
	}
	if err != nil {
		return StatusFailed, err.Error()
	}
	if !changed {
		return StatusConflict, "the row changed since it was planned: nothing written; the next run plans again"
	}
	a.Status = StatusApplied
	id, err := ap.Store.RecordRepair(ctx, tx, ap.record(a))
	if err != nil {
		return StatusFailed, err.Error()
	}
	if ap.BeforeCommit != nil {
		if err := ap.BeforeCommit(ctx, tx); err != nil {
			return StatusFailed, err.Error()
		}
	}
	if err := tx.Commit(ctx); err != nil {
		// The connection may have dropped after the server committed:
		// the audit row, written in the same transaction, says which.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if ok, cerr := ap.Store.RepairRecorded(rctx, id); cerr == nil && ok {
			a.RecordID = id
			return StatusApplied, ""
		}
		return StatusFailed, "commit: " + err.Error()
	}
	a.RecordID = id
	return StatusApplied, ""
}

// insert adds the missing row unless the tenant has one by now, or no
// longer names that database.
func (ap *Applier) insert(ctx context.Context, tx pgx.Tx, a *Action) (bool, error) {
	w := a.write
	tenantCol, dbCol := w.insertCols[0], w.insertCols[1] // tenant_id and database_name come first
	if w.guardTable != nil {
		q := "SELECT 1 FROM " + w.guardTable.Sanitize() + " AS g WHERE g." + col(w.guardKeyCol) + " = $1 AND g." +
			col(w.guardCol) + "::text IS NOT DISTINCT FROM $2::text"
		if w.guardNotDeleted != "" {
			q += " AND g." + col(w.guardNotDeleted) + " IS NULL"
		}
		var one int
		err := tx.QueryRow(ctx, q+" FOR SHARE", w.guardKeyVal, w.guardValue).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil // renamed, deleted or gone since the plan
		}
		if err != nil {
			return false, fmt.Errorf("recheck the tenant: %w", err)
		}
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+w.table.Sanitize()+" WHERE "+col(tenantCol)+" = $1 OR "+col(dbCol)+" = $2)",
		w.insertVals[0], w.insertVals[1]).Scan(&exists); err != nil {
		return false, fmt.Errorf("look for an existing row: %w", err)
	}
	if exists {
		return false, nil
	}
	placeholders := make([]string, len(w.insertCols))
	var args []any
	for i := range w.insertCols {
		if expr, ok := w.exprs[i]; ok {
			placeholders[i] = expr
			continue
		}
		args = append(args, w.insertVals[i])
		placeholders[i] = fmt.Sprintf("$%d", len(args))
		if i < len(w.insertTypes) && w.insertTypes[i] != "" {
			// Values travel as text and become the column's type here.
			placeholders[i] = fmt.Sprintf("CAST($%d::text AS %s)", len(args), w.insertTypes[i])
		}
	}
	cols := make([]string, len(w.insertCols))
	for i, c := range w.insertCols {
		cols[i] = col(c)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+w.table.Sanitize()+" ("+strings.Join(cols, ", ")+") VALUES ("+strings.Join(placeholders, ", ")+")", args...); err != nil {
		return false, fmt.Errorf("insert row: %w", err)
	}
	return true, nil
}

// update changes one column if the row (and the source of truth) still
// hold what the plan saw.
func (ap *Applier) update(ctx context.Context, tx pgx.Tx, w write) (bool, error) {
	if w.guardTable != nil && w.casCol != "" {
		return false, errors.New("a guarded copy with a timestamp guard is not supported")
	}
	set := col(w.col) + " = $1"
	if w.guardTable != nil {
		// The value comes from the source of truth itself, in its own
		// type; $1 (its text) only guards that it has not moved.
		set = fmt.Sprintf("%s = (SELECT g.%s FROM %s AS g WHERE g.%s = $4)", col(w.col), col(w.guardCol), w.guardTable.Sanitize(), col(w.guardKeyCol))
	}
	if w.touchUpdatedAt {
		set += ", updated_at = now()"
	}
	where := col(w.keyCol) + " = $2 AND " + col(w.col) + "::text IS NOT DISTINCT FROM $3::text"
	args := []any{w.after, w.keyVal, w.before}
	if w.casCol != "" {
		args = append(args, w.casVal)
		where += fmt.Sprintf(" AND %s IS NOT DISTINCT FROM $%d", col(w.casCol), len(args))
	}
	if w.guardTable != nil {
		args = append(args, w.guardKeyVal)
		where += fmt.Sprintf(" AND EXISTS (SELECT 1 FROM %s AS g WHERE g.%s = $%d AND g.%s::text IS NOT DISTINCT FROM $1::text)",
			w.guardTable.Sanitize(), col(w.guardKeyCol), len(args), col(w.guardCol))
	}

	tag, err := tx.Exec(ctx, "UPDATE "+w.table.Sanitize()+" SET "+set+" WHERE "+where, args...)
	if err != nil {
		return false, fmt.Errorf("update %s: %w", w.col, err)
	}
	switch tag.RowsAffected() {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, fmt.Errorf("update %s: %d rows matched where one was expected; rolled back", w.col, tag.RowsAffected())
}

// Verify marks each applied action whose finding is still among remaining
// (fingerprints of the affected checks' findings after the repair) as
// failed, and records every applied action's verification.
func Verify(ctx context.Context, store *state.Store, actions []Action, remaining map[string]bool, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for i := range actions {
		a := &actions[i]
		if a.Status != StatusApplied {
			continue
		}
		fixed := !remaining[a.Fingerprint]
		reason := ""
		if !fixed {
			a.Status, a.Reason = StatusFailed, "applied, but the drift persists when the check runs again"
			reason = a.Reason
			log.Error("repair did not fix the drift", "action", a.Action, "tenant_id", a.TenantID)
		}
		if a.RecordID != 0 {
			if err := store.VerifyRepair(ctx, a.RecordID, fixed, reason); err != nil {
				log.Error("record repair verification", "err", err)
			}
		}
	}
}
