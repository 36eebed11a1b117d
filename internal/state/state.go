// Package state keeps tenantdrift's finding history in PostgreSQL, so that
// findings survive restarts and separate audit runs (a cron container, say)
// share one history.
//
// Everything lives in one schema that tenantdrift creates and migrates
// itself (see Open): a runs table, one row per check run, and a findings
// table, one row per fingerprint, which records when the drift was first
// and last seen, when it was resolved and how often it came back.
package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantdrift/tenantdrift/internal/check"
)

// DefaultSchema is the schema Open uses when given none.
const DefaultSchema = "tenantdrift"

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Status is where a finding stands in its history.
type Status string

// Statuses of a finding.
const (
	// StatusNew is a finding seen for the first time.
	StatusNew Status = "new"
	// StatusOpen is a finding seen before and not resolved since.
	StatusOpen Status = "open"
	// StatusResolved is a finding that a completed run no longer saw.
	StatusResolved Status = "resolved"
	// StatusReopened is a resolved finding seen again.
	StatusReopened Status = "reopened"
)

// Outcomes of a run, as recorded in Run.Outcome.
const (
	OutcomeOK      = check.StatusOK
	OutcomeDrift   = check.StatusDrift
	OutcomeError   = check.StatusError
	OutcomeSkipped = "skipped"
)

// Finding is a stored finding with its history. The embedded finding's Key
// is not stored and is empty on findings read back; it is already part of
// the fingerprint.
type Finding struct {
	check.Finding
	FirstSeen     time.Time
	LastSeen      time.Time
	ResolvedAt    *time.Time // nil while open
	ReopenedCount int
	// NotifiedAt is the finished time of the run whose Slack notification
	// first announced the finding (a new_findings or storm item); nil while
	// it never was. Reopening keeps it.
	NotifiedAt *time.Time
	Status     Status
}

// Transitions is what one run changed, each slice sorted like OpenFindings.
type Transitions struct {
	New       []Finding
	Reopened  []Finding
	StillOpen []Finding
	Resolved  []Finding
	// Threads are the check's open Slack threads as the run left them:
	// filled only for the plan of RecordRunsWithOutbox.
	Threads []Thread
}

// Run is one recorded run of one check.
type Run struct {
	Check      string
	StartedAt  time.Time
	FinishedAt time.Time
	Outcome    string // OutcomeOK, OutcomeDrift, OutcomeError or OutcomeSkipped
	Findings   int
	New        int
	Resolved   int
	Error      string // empty unless Outcome is OutcomeError
}

// Store is the finding history in one schema of a PostgreSQL database.
// It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	schema string
	now    func() time.Time
	// Qualified, quoted table names.
	findings, runs, versions string
	outbox, messages         string
	threads, threadFindings  string
	repairs                  string
	tables                   *strings.Replacer // {findings}, {runs}, {outbox}, {slack_messages}, {threads}, {thread_findings} and {repairs} in queries
	known                    int               // newest migration version embedded
}

// Open validates schema (DefaultSchema when empty), creates it if needed,
// applies the migrations it lacks and returns a Store using pool. now is
// the clock Prune measures retention from; nil means time.Now.
//
// Processes opening the same database at once take turns migrating. Open
// returns a *SchemaTooNewError when the schema was migrated by a newer
// tenantdrift, and an error when schema is not a valid name or the database
// cannot be migrated (a role without CREATE on the database, say, when the
// schema does not exist yet).
func Open(ctx context.Context, pool *pgxpool.Pool, schema string, now func() time.Time) (*Store, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	if err := validSchema(schema); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, pool, schema, ms); err != nil {
		return nil, fmt.Errorf("migrate state schema %s: %w", schema, err)
	}
	s := &Store{
		pool:     pool,
		schema:   schema,
		now:      now,
		findings: pgx.Identifier{schema, "findings"}.Sanitize(),
		runs:     pgx.Identifier{schema, "runs"}.Sanitize(),
		versions: pgx.Identifier{schema, "schema_migrations"}.Sanitize(),
		outbox:   pgx.Identifier{schema, "outbox"}.Sanitize(),
		messages: pgx.Identifier{schema, "slack_messages"}.Sanitize(),
		threads:  pgx.Identifier{schema, "threads"}.Sanitize(),
		repairs:  pgx.Identifier{schema, "repairs"}.Sanitize(),
		known:    ms[len(ms)-1].version,

		threadFindings: pgx.Identifier{schema, "thread_findings"}.Sanitize(),
	}
	s.tables = strings.NewReplacer("{findings}", s.findings, "{runs}", s.runs,
		"{outbox}", s.outbox, "{slack_messages}", s.messages,
		"{threads}", s.threads, "{thread_findings}", s.threadFindings, "{repairs}", s.repairs)
	return s, nil
}

func validSchema(schema string) error {
	if !schemaName.MatchString(schema) {
		return fmt.Errorf("invalid state schema name %q: want lowercase letters, digits and underscores, not starting with a digit, at most 63 characters", schema)
	}
	if strings.HasPrefix(schema, "pg_") {
		return fmt.Errorf("invalid state schema name %q: the pg_ prefix is reserved by PostgreSQL", schema)
	}
	return nil
}

// sql fills the table placeholders of a query.
func (s *Store) sql(q string) string {
	return s.tables.Replace(q)
}

// findingColumns are the columns scanFinding reads, in order, from a
// findings row aliased f.
const findingColumns = `f.fingerprint, f."check", f.tenant_id, f.tenant_slug, f.database_name,
	f.field, f.reason, f.severity, f.expected, f.actual, f.message,
	f.first_seen, f.last_seen, f.resolved_at, f.reopened_count, f.notified_at`

func scanFinding(row pgx.CollectableRow, status *Status) (Finding, error) {
	var f Finding
	dest := []any{
		&f.Fingerprint, &f.Check, &f.TenantID, &f.TenantSlug, &f.DatabaseName,
		&f.Field, &f.Reason, &f.Severity, &f.Expected, &f.Actual, &f.Message,
		&f.FirstSeen, &f.LastSeen, &f.ResolvedAt, &f.ReopenedCount, &f.NotifiedAt,
	}
	if status != nil {
		dest = append([]any{status}, dest...)
	}
	err := row.Scan(dest...)
	if status != nil {
		f.Status = *status
	}
	return f, err
}

// incomingTable is the temporary table RecordRun copies a run's findings
// into. It is dropped at the end of the transaction; its primary key gives
// every join below an index, whatever the planner believes about the
// sizes of the tables (findings may not have been analysed since it grew).
var incomingTable = pgx.Identifier{"pg_temp", "tenantdrift_incoming"}

var incomingColumns = []string{"fingerprint", "tenant_id", "tenant_slug", "database_name", "field",
	"reason", "severity", "expected", "actual", "message"}

const createIncomingSQL = `CREATE TEMPORARY TABLE tenantdrift_incoming (
	fingerprint   text PRIMARY KEY,
	tenant_id     text NOT NULL,
	tenant_slug   text NOT NULL,
	database_name text NOT NULL,
	field         text NOT NULL,
	reason        text NOT NULL,
	severity      text NOT NULL,
	expected      text NOT NULL,
	actual        text NOT NULL,
	message       text NOT NULL
) ON COMMIT DROP`

// recordRunSQL upserts the incoming findings of check $1, seen at $2, and
// resolves the check's open findings that are not among them, in one
// statement. It returns every finding it touched with its transition.
//
// All parts of the statement see the table as it was before the statement
// (prev reads the resolved_at the upsert is about to clear); the upsert
// and the resolution touch disjoint rows. A fingerprint already held by
// another check is left to that check.
const recordRunSQL = `
WITH prev AS (
	SELECT f.fingerprint, f.resolved_at
	FROM {findings} f JOIN pg_temp.tenantdrift_incoming i ON i.fingerprint = f.fingerprint
),
upserted AS (
	INSERT INTO {findings} AS f (fingerprint, "check", tenant_id, tenant_slug, database_name,
		field, reason, severity, expected, actual, message, first_seen, last_seen)
	SELECT fingerprint, $1, tenant_id, tenant_slug, database_name,
		field, reason, severity, expected, actual, message, $2, $2
	FROM pg_temp.tenantdrift_incoming
	ON CONFLICT (fingerprint) DO UPDATE SET
		tenant_id      = excluded.tenant_id,
		tenant_slug    = excluded.tenant_slug,
		database_name  = excluded.database_name,
		field          = excluded.field,
		reason         = excluded.reason,
		severity       = excluded.severity,
		expected       = excluded.expected,
		actual         = excluded.actual,
		message        = excluded.message,
		last_seen      = excluded.last_seen,
		resolved_at    = NULL,
		reopened_count = f.reopened_count + CASE WHEN f.resolved_at IS NULL THEN 0 ELSE 1 END
	WHERE f."check" = excluded."check"
	RETURNING ` + findingColumns + `, f.xmax = 0 AS inserted
),
resolved AS (
	UPDATE {findings} f SET resolved_at = $2
	WHERE f."check" = $1 AND f.resolved_at IS NULL
	  AND NOT EXISTS (SELECT 1 FROM pg_temp.tenantdrift_incoming i WHERE i.fingerprint = f.fingerprint)
	RETURNING ` + findingColumns + `
)
SELECT CASE WHEN f.inserted THEN 'new'
            WHEN p.resolved_at IS NOT NULL THEN 'reopened'
            ELSE 'open' END,
	` + findingColumns + `
FROM upserted f LEFT JOIN prev p ON p.fingerprint = f.fingerprint
UNION ALL
SELECT 'resolved', ` + findingColumns + `
FROM resolved f`

const insertRunSQL = `INSERT INTO {runs}
	("check", started_at, finished_at, outcome, findings, new, resolved, error)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// runLockClass is the first key of the per-check pg_advisory_xact_lock that
// serialises RecordRun calls for one check ("td").
const runLockClass int32 = 0x7464

// RecordRun records one run of check res.Name, which started and finished
// at the given times, and its findings, in one transaction: on any error,
// including a cancelled ctx, nothing is written.
//
// When res.Err is nil the run completed: each finding in res.Findings is
// inserted (new), refreshed (still open: last_seen, severity, values and
// message updated) or reopened; the check's open findings it did not report
// are resolved at finished. Findings, first seen, last seen and resolved are
// all stamped with finished. A finding's Check is taken to be res.Name, its
// fingerprint is computed when empty, and repeated fingerprints count once.
// Text that PostgreSQL cannot store (NUL bytes, invalid UTF-8) is stored
// with U+FFFD in its place.
//
// When res.Err is not nil the run is recorded with outcome error and its
// message, and findings are left untouched: a run that could not complete
// resolves nothing. The returned Transitions are then empty.
//
// Runs of the same check take turns; runs of different checks do not wait
// for each other.
func (s *Store) RecordRun(ctx context.Context, res check.Result, started, finished time.Time) (Transitions, error) {
	return s.RecordRunWithOutbox(ctx, res, started, finished, nil)
}

// RecordRunWithOutbox is RecordRun that also enqueues notifications in the
// same transaction: plan, when not nil, is called with the run's
// transitions (empty when res.Err is not nil) before the commit, and the
// items it returns are inserted into the outbox, due at once. The findings,
// the run and the items commit together or not at all: when an item cannot
// be stored (an unknown kind, a payload that does not marshal) nothing is,
// and when plan panics the transaction is rolled back before the panic
// goes on. plan must not block; it runs while the check's run lock is held.
//
// The transitions plan sees carry the check's open Slack threads
// (Transitions.Threads); the ones returned do not. Enqueued items keep the
// threads up to date (see OutboxItem).
func (s *Store) RecordRunWithOutbox(ctx context.Context, res check.Result, started, finished time.Time,
	plan func(Transitions) []OutboxItem) (Transitions, error) {
	var plans func([]Transitions) []OutboxItem
	if plan != nil {
		plans = func(ts []Transitions) []OutboxItem { return plan(ts[0]) }
	}
	ts, err := s.RecordRunsWithOutbox(ctx, []check.Result{res}, started, finished, plans)
	if err != nil {
		return Transitions{}, err
	}
	return ts[0], nil
}

// RecordRunsWithOutbox records the runs of several checks that started and
// finished together (one audit), each as RecordRun does, and the items plan
// returns, all in one transaction. plan, when not nil, is called once with
// every run's transitions, in the order of results, so that it can decide
// across checks (one storm for all of them, say). Each check appears at
// most once in results; their run locks are taken in name order.
func (s *Store) RecordRunsWithOutbox(ctx context.Context, results []check.Result, started, finished time.Time,
	plan func([]Transitions) []OutboxItem) ([]Transitions, error) {
	names := make([]string, 0, len(results))
	for _, res := range results {
		if res.Name == "" {
			return nil, errors.New("record run: no check name")
		}
		names = append(names, res.Name)
	}
	slices.Sort(names)
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			return nil, fmt.Errorf("record runs: check %s appears twice", names[i])
		}
	}
	what := "record runs" // for errors of the whole transaction
	if len(names) == 1 {
		what = "record run of " + names[0]
	}

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: begin: %w", what, err)
	}
	defer rollback(ctx, tx)
	for _, name := range names {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", runLockClass, s.schema+"."+name); err != nil {
			return nil, fmt.Errorf("lock check %s: %w", name, err)
		}
	}

	ts := make([]Transitions, len(results))
	var completed []string
	incoming := false // the temporary table exists
	for i, res := range results {
		if res.Err != nil {
			if _, err := tx.Exec(ctx, s.sql(insertRunSQL),
				res.Name, started, finished, OutcomeError, 0, 0, 0, clean(res.Err.Error())); err != nil {
				return nil, fmt.Errorf("record run of %s: %w", res.Name, err)
			}
			continue
		}
		ts[i], err = s.recordRun(ctx, tx, res, started, finished, incoming)
		if err != nil {
			return nil, err
		}
		incoming = true
		completed = append(completed, res.Name)
	}

	if plan != nil {
		seen := slices.Clone(ts)
		if len(completed) > 0 {
			threads, err := s.openThreads(ctx, tx, completed)
			if err != nil {
				return nil, err
			}
			for i, res := range results {
				if res.Err == nil {
					seen[i].Threads = threads[res.Name]
				}
			}
		}
		if err := s.enqueue(ctx, tx, plan(seen), finished); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("%s: commit: %w", what, err)
	}
	return ts, nil
}

// recordRun records the completed run res in tx. The temporary table of
// incoming findings is created unless exists says an earlier run of the
// transaction did, in which case it is emptied.
func (s *Store) recordRun(ctx context.Context, tx pgx.Tx, res check.Result, started, finished time.Time, exists bool) (Transitions, error) {
	incoming := incomingOf(res.Name, res.Findings)
	prepare := createIncomingSQL
	if exists {
		prepare = "TRUNCATE pg_temp.tenantdrift_incoming"
	}
	if _, err := tx.Exec(ctx, prepare); err != nil {
		return Transitions{}, fmt.Errorf("record findings of %s: create temporary table: %w", res.Name, err)
	}
	if _, err := tx.CopyFrom(ctx, incomingTable, incomingColumns, pgx.CopyFromSlice(len(incoming), func(i int) ([]any, error) {
		f := &incoming[i]
		return []any{f.Fingerprint, f.TenantID, f.TenantSlug, f.DatabaseName, f.Field,
			f.Reason, f.Severity, f.Expected, f.Actual, f.Message}, nil
	})); err != nil {
		return Transitions{}, fmt.Errorf("record findings of %s: copy: %w", res.Name, err)
	}
	if _, err := tx.Exec(ctx, "ANALYZE pg_temp.tenantdrift_incoming"); err != nil {
		return Transitions{}, fmt.Errorf("record findings of %s: analyze: %w", res.Name, err)
	}
	rows, err := tx.Query(ctx, s.sql(recordRunSQL), res.Name, finished)
	if err != nil {
		return Transitions{}, fmt.Errorf("record findings of %s: %w", res.Name, err)
	}
	var st Status
	touched, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Finding, error) {
		return scanFinding(row, &st)
	})
	if err != nil {
		return Transitions{}, fmt.Errorf("record findings of %s: %w", res.Name, err)
	}
	var tr Transitions
	for _, f := range touched {
		switch f.Status {
		case StatusNew:
			tr.New = append(tr.New, f)
		case StatusReopened:
			tr.Reopened = append(tr.Reopened, f)
		case StatusOpen:
			tr.StillOpen = append(tr.StillOpen, f)
		case StatusResolved:
			tr.Resolved = append(tr.Resolved, f)
		}
	}
	for _, fs := range [][]Finding{tr.New, tr.Reopened, tr.StillOpen, tr.Resolved} {
		sortFindings(fs)
	}

	outcome := OutcomeOK
	if len(incoming) > 0 {
		outcome = OutcomeDrift
	}
	if _, err := tx.Exec(ctx, s.sql(insertRunSQL),
		res.Name, started, finished, outcome, len(incoming), len(tr.New), len(tr.Resolved), nil); err != nil {
		return Transitions{}, fmt.Errorf("record run of %s: %w", res.Name, err)
	}
	return tr, nil
}

// RecordSkipped records that check checkName was due at at but skipped.
func (s *Store) RecordSkipped(ctx context.Context, checkName string, at time.Time) error {
	if checkName == "" {
		return errors.New("record skipped run: no check name")
	}
	if _, err := s.pool.Exec(ctx, s.sql(insertRunSQL),
		checkName, at, at, OutcomeSkipped, 0, 0, 0, nil); err != nil {
		return fmt.Errorf("record skipped run of %s: %w", checkName, err)
	}
	return nil
}

// OpenFindings returns every unresolved finding, most severe first, then
// by check and tenant slug (see sortFindings). Their Status is StatusOpen;
// ReopenedCount tells whether they were resolved before.
func (s *Store) OpenFindings(ctx context.Context) ([]Finding, error) {
	rows, err := s.pool.Query(ctx, s.sql(`SELECT `+findingColumns+` FROM {findings} f WHERE f.resolved_at IS NULL`))
	if err != nil {
		return nil, fmt.Errorf("query open findings: %w", err)
	}
	fs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Finding, error) {
		f, err := scanFinding(row, nil)
		f.Status = StatusOpen
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("query open findings: %w", err)
	}
	sortFindings(fs)
	return fs, nil
}

// sortFindings orders findings by severity (critical, warning, info, then
// anything else), check, tenant slug, then tenant id, field, reason and
// fingerprint so the order is total. Strings compare bytewise.
func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(check.Rank(b.Severity), check.Rank(a.Severity)),
			strings.Compare(a.Check, b.Check),
			strings.Compare(a.TenantSlug, b.TenantSlug),
			strings.Compare(a.TenantID, b.TenantID),
			strings.Compare(a.Field, b.Field),
			strings.Compare(a.Reason, b.Reason),
			strings.Compare(a.Fingerprint, b.Fingerprint),
		)
	})
}

// LastRuns returns the latest recorded run of each check, whatever its
// outcome, keyed by check name.
func (s *Store) LastRuns(ctx context.Context) (map[string]Run, error) {
	rows, err := s.pool.Query(ctx, s.sql(`
		SELECT DISTINCT ON ("check") "check", started_at, finished_at, outcome,
			findings, new, resolved, coalesce(error, '')
		FROM {runs}
		ORDER BY "check", started_at DESC, id DESC`))
	if err != nil {
		return nil, fmt.Errorf("query last runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Run, error) {
		var r Run
		err := row.Scan(&r.Check, &r.StartedAt, &r.FinishedAt, &r.Outcome, &r.Findings, &r.New, &r.Resolved, &r.Error)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("query last runs: %w", err)
	}
	m := make(map[string]Run, len(runs))
	for _, r := range runs {
		m[r.Check] = r
	}
	return m, nil
}

// LastSuccess returns, for each check that has completed a run (outcome ok
// or drift), when its latest such run finished, keyed by check name.
// Errored and skipped runs do not count.
func (s *Store) LastSuccess(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, s.sql(`
		SELECT DISTINCT ON ("check") "check", finished_at
		FROM {runs}
		WHERE outcome IN ('ok', 'drift')
		ORDER BY "check", started_at DESC, id DESC`))
	if err != nil {
		return nil, fmt.Errorf("query last successful runs: %w", err)
	}
	m := make(map[string]time.Time)
	var (
		name string
		at   time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &at}, func() error {
		m[name] = at
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query last successful runs: %w", err)
	}
	return m, nil
}

// pruneThreadsSQL deletes the threads closed before $1, and those
// announced before $1 that no open finding keeps open.
const pruneThreadsSQL = `DELETE FROM {threads} t
	WHERE t.closed_at < $1
	   OR (t.closed_at IS NULL AND t.announced_at < $1 AND NOT EXISTS (
		SELECT 1 FROM {thread_findings} tf JOIN {findings} f ON f.fingerprint = tf.fingerprint
		WHERE tf.thread_key = t.thread_key AND f.resolved_at IS NULL))`

// pruneSlackMessagesSQL deletes the Slack messages posted before $1 that
// nothing may still reply to or edit: no open thread (threads, after
// pruneThreadsSQL) and no pending outbox item has their key.
const pruneSlackMessagesSQL = `DELETE FROM {slack_messages} m
	WHERE m.posted_at < $1
	  AND NOT EXISTS (SELECT 1 FROM {threads} t WHERE t.thread_key = m.thread_key AND t.closed_at IS NULL)
	  AND NOT EXISTS (SELECT 1 FROM {outbox} o WHERE o.thread_key = m.thread_key AND o.state = 'pending')`

// Prune deletes findings resolved, runs started, outbox items created
// (and no longer pending) and Slack threads closed more than retention
// before now, and the Slack messages posted before then that no open
// thread or pending item needs, in one transaction, and reports how many
// findings and runs it deleted.
// Open findings are never pruned, however old. retention must be positive.
func (s *Store) Prune(ctx context.Context, retention time.Duration) (findings, runs int64, err error) {
	if retention <= 0 {
		return 0, 0, fmt.Errorf("prune state: retention %s is not positive", retention)
	}
	cutoff := s.now().Add(-retention)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("prune state: begin: %w", err)
	}
	defer rollback(ctx, tx)
	tag, err := tx.Exec(ctx, s.sql(`DELETE FROM {findings} WHERE resolved_at < $1`), cutoff)
	if err != nil {
		return 0, 0, fmt.Errorf("prune findings: %w", err)
	}
	findings = tag.RowsAffected()
	tag, err = tx.Exec(ctx, s.sql(`DELETE FROM {runs} WHERE started_at < $1`), cutoff)
	if err != nil {
		return 0, 0, fmt.Errorf("prune runs: %w", err)
	}
	runs = tag.RowsAffected()
	if _, err := tx.Exec(ctx, s.sql(`DELETE FROM {outbox} WHERE state <> 'pending' AND created_at < $1`), cutoff); err != nil {
		return 0, 0, fmt.Errorf("prune outbox: %w", err)
	}
	if _, err := tx.Exec(ctx, s.sql(pruneThreadsSQL), cutoff); err != nil {
		return 0, 0, fmt.Errorf("prune slack threads: %w", err)
	}
	if _, err := tx.Exec(ctx, s.sql(pruneSlackMessagesSQL), cutoff); err != nil {
		return 0, 0, fmt.Errorf("prune slack messages: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("prune state: commit: %w", err)
	}
	return findings, runs, nil
}

// Ping checks that the state schema is reachable and still at a version
// this binary knows; it returns a *SchemaTooNewError when a newer
// tenantdrift has migrated it since Open.
func (s *Store) Ping(ctx context.Context) error {
	var v int
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+s.versions).Scan(&v); err != nil {
		return fmt.Errorf("ping state schema %s: %w", s.schema, err)
	}
	if v > s.known {
		return fmt.Errorf("ping state schema %s: %w", s.schema, &SchemaTooNewError{Schema: s.schema, Version: v, Known: s.known})
	}
	return nil
}

// incomingOf returns fs, reported by check name, as RecordRun stores them:
// Check set to name, fingerprint computed when missing, one finding per
// fingerprint (the first wins), text made storable.
func incomingOf(name string, fs []check.Finding) []check.Finding {
	out := make([]check.Finding, 0, len(fs))
	seen := make(map[string]struct{}, len(fs))
	for _, f := range fs {
		f.Check = name
		if f.Fingerprint == "" {
			f.Fingerprint = check.Fingerprint(f)
		}
		f.Fingerprint = clean(f.Fingerprint)
		if _, dup := seen[f.Fingerprint]; dup {
			continue
		}
		seen[f.Fingerprint] = struct{}{}
		for _, p := range []*string{&f.TenantID, &f.TenantSlug, &f.DatabaseName, &f.Field,
			&f.Reason, &f.Severity, &f.Expected, &f.Actual, &f.Message} {
			*p = clean(*p)
		}
		out = append(out, f)
	}
	return out
}

// clean makes s storable as PostgreSQL text, which holds neither NUL bytes
// nor invalid UTF-8: both become U+FFFD.
func clean(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// cleanAll returns ss, each made storable by clean.
func cleanAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = clean(s)
	}
	return out
}
