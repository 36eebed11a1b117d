package state_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// t0 is a fixed instant the tests count from, in whole microseconds as
// PostgreSQL stores them.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

func open(t testing.TB, pool *pgxpool.Pool) *state.Store {
	t.Helper()
	s, err := state.Open(t.Context(), pool, "", func() time.Time { return t0 })
	require.NoError(t, err)
	return s
}

// finding is a finding as check.RunOne stamps it.
func finding(checkName, tenant, field, severity string) check.Finding {
	f := check.Finding{
		Check:        checkName,
		Severity:     severity,
		TenantID:     "id-" + tenant,
		TenantSlug:   tenant,
		DatabaseName: "db_" + tenant,
		Field:        field,
		Reason:       "mismatch",
		Expected:     "x",
		Actual:       "y",
		Message:      tenant + " " + field + " differs",
	}
	f.Fingerprint = check.Fingerprint(f)
	return f
}

func result(name string, fs ...check.Finding) check.Result {
	r := check.Result{Name: name, Findings: fs, Status: check.StatusOK}
	if len(fs) > 0 {
		r.Status = check.StatusDrift
	}
	return r
}

func record(t testing.TB, s *state.Store, res check.Result, minute int) state.Transitions {
	t.Helper()
	tr, err := s.RecordRun(t.Context(), res, at(minute).Add(-30*time.Second), at(minute))
	require.NoError(t, err)
	return tr
}

func fingerprints(fs []state.Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Fingerprint)
	}
	return out
}

func fps(fs ...check.Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Fingerprint)
	}
	return out
}

func queryInt(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), sql, args...).Scan(&n))
	return n
}

// newPool opens another pool on the database of pool, closed when t ends.
func newPool(t testing.TB, pool *pgxpool.Pool, change func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg := pool.Config()
	if change != nil {
		change(cfg)
	}
	p, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func TestOpenCreatesSchema(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, schema, want string
	}{
		{"default", "", "tenantdrift"},
		{"custom", "td_state_2", "td_state_2"},
		{"underscore first", "_td", "_td"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// One connection, so the search_path check below sees the
			// connection the migrations ran on.
			pool := newPool(t, pgtest.NewPool(t), func(c *pgxpool.Config) { c.MaxConns = 1 })
			_, err := state.Open(t.Context(), pool, tt.schema, nil)
			require.NoError(t, err)

			rows, err := pool.Query(t.Context(),
				`SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, tt.want)
			require.NoError(t, err)
			tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			assert.Equal(t, []string{"findings", "outbox", "repairs", "runs", "schema_migrations", "slack_messages",
				"thread_findings", "threads"}, tables)

			versions := pgx.Identifier{tt.want, "schema_migrations"}.Sanitize()
			n := queryInt(t, pool, "SELECT count(*) FROM "+versions)
			assert.Positive(t, n)
			assert.Equal(t, n, queryInt(t, pool, "SELECT max(version) FROM "+versions))

			// Idempotent: opening again applies nothing and changes nothing.
			for range 2 {
				_, err = state.Open(t.Context(), pool, tt.schema, nil)
				require.NoError(t, err)
			}
			assert.Equal(t, n, queryInt(t, pool, "SELECT count(*) FROM "+versions))
			var searchPath string
			require.NoError(t, pool.QueryRow(t.Context(), "SHOW search_path").Scan(&searchPath))
			assert.Equal(t, `"$user", public`, searchPath, "migration search_path leaked into the pool")
		})
	}
}

// TestOpenExistingSchemaWithoutCreate opens a schema a DBA created for a
// role that may not create schemas in the database.
func TestOpenExistingSchemaWithoutCreate(t *testing.T) {
	t.Parallel()
	admin := pgtest.NewPool(t)
	role := "td_app_" + strconv.FormatUint(rand.Uint64(), 36) // roles are server-wide
	const password = "not-a-secret"
	_, err := admin.Exec(t.Context(), "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN PASSWORD '"+password+"'")
	require.NoError(t, err, "the test server's user must be allowed to CREATE ROLE")
	app := newPool(t, admin, func(c *pgxpool.Config) { c.ConnConfig.User, c.ConnConfig.Password = role, password })
	t.Cleanup(func() {
		app.Close()
		ctx := context.WithoutCancel(t.Context())
		_, err := admin.Exec(ctx, "DROP OWNED BY "+pgx.Identifier{role}.Sanitize())
		assert.NoError(t, err)
		_, err = admin.Exec(ctx, "DROP ROLE "+pgx.Identifier{role}.Sanitize())
		assert.NoError(t, err)
	})

	// Without the schema, the role cannot create it: a clear error.
	_, err = state.Open(t.Context(), app, "td_owned", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "create schema td_owned")

	_, err = admin.Exec(t.Context(), "CREATE SCHEMA td_owned AUTHORIZATION "+pgx.Identifier{role}.Sanitize())
	require.NoError(t, err)
	s, err := state.Open(t.Context(), app, "td_owned", nil)
	require.NoError(t, err)
	record(t, s, result("c", finding("c", "acme", "", "info")), 1)
	require.NoError(t, s.Ping(t.Context()))
}

func TestOpenInvalidSchema(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	for _, schema := range []string{
		"Tenantdrift", "1st", "td-state", "td state", `td"; DROP SCHEMA public; --`,
		"pg_state", strings.Repeat("a", 64), "tëst",
	} {
		t.Run(schema, func(t *testing.T) {
			_, err := state.Open(t.Context(), pool, schema, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "invalid state schema name")
		})
	}
	// 63 characters is PostgreSQL's limit, and fine.
	_, err := state.Open(t.Context(), pool, strings.Repeat("a", 63), nil)
	require.NoError(t, err)
	assert.Equal(t, 1, queryInt(t, pool, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", strings.Repeat("a", 63)))
}

func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	const n = 6
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		p := newPool(t, pool, nil) // as if each were its own process
		wg.Go(func() {
			<-start
			_, errs[i] = state.Open(t.Context(), p, "", nil)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "Open #%d", i)
	}
	assert.Equal(t, queryInt(t, pool, "SELECT max(version) FROM tenantdrift.schema_migrations"),
		queryInt(t, pool, "SELECT count(*) FROM tenantdrift.schema_migrations"))
}

func TestOpenNewerSchema(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := open(t, pool)
	require.NoError(t, s.Ping(t.Context()))
	known := queryInt(t, pool, "SELECT max(version) FROM tenantdrift.schema_migrations")
	_, err := pool.Exec(t.Context(), "INSERT INTO tenantdrift.schema_migrations (version) VALUES ($1)", known+1)
	require.NoError(t, err)

	_, err = state.Open(t.Context(), pool, "", nil)
	require.Error(t, err)
	var tooNew *state.SchemaTooNewError
	require.ErrorAs(t, err, &tooNew)
	assert.Equal(t, known+1, tooNew.Version)
	assert.Equal(t, known, tooNew.Known)
	assert.Contains(t, err.Error(), "newer than this tenantdrift knows")

	// A store opened before the upgrade notices on its next ping.
	err = s.Ping(t.Context())
	require.ErrorAs(t, err, &tooNew)
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := open(t, pool)

	a := finding("field_mismatch", "acme", "name", "warning")
	b := finding("field_mismatch", "bolt", "name", "critical")
	a2 := a
	a2.Actual, a2.Severity, a2.Message = "z", "critical", "changed"

	type want struct {
		newFPs, reopened, stillOpen, resolved []string
		open                                  []string // OpenFindings order
	}
	steps := []struct {
		name string
		res  check.Result
		want want
	}{
		{"first sight", result("field_mismatch", a, b),
			want{newFPs: fps(b, a), reopened: fps(), stillOpen: fps(), resolved: fps(), open: fps(b, a)}},
		{"still open with new values", result("field_mismatch", a2, b),
			want{newFPs: fps(), reopened: fps(), stillOpen: fps(a, b), resolved: fps(), open: fps(a, b)}},
		{"b gone", result("field_mismatch", a2),
			want{newFPs: fps(), reopened: fps(), stillOpen: fps(a), resolved: fps(b), open: fps(a)}},
		{"b back", result("field_mismatch", a2, b),
			want{newFPs: fps(), reopened: fps(b), stillOpen: fps(a), resolved: fps(), open: fps(a, b)}},
		{"all gone", result("field_mismatch"),
			want{newFPs: fps(), reopened: fps(), stillOpen: fps(), resolved: fps(a, b), open: fps()}},
	}
	trs := make([]state.Transitions, len(steps))
	for i, step := range steps {
		trs[i] = record(t, s, step.res, i+1)
		assert.Equal(t, step.want.newFPs, fingerprints(trs[i].New), "%s: new", step.name)
		assert.Equal(t, step.want.reopened, fingerprints(trs[i].Reopened), "%s: reopened", step.name)
		assert.Equal(t, step.want.stillOpen, fingerprints(trs[i].StillOpen), "%s: still open", step.name)
		assert.Equal(t, step.want.resolved, fingerprints(trs[i].Resolved), "%s: resolved", step.name)
		open, err := s.OpenFindings(t.Context())
		require.NoError(t, err)
		assert.Equal(t, step.want.open, fingerprints(open), "%s: open findings", step.name)
		for _, f := range open {
			assert.Equal(t, state.StatusOpen, f.Status)
			assert.Nil(t, f.ResolvedAt)
		}
	}

	// Step 1: both new, first and last seen at the run's finish.
	fa := trs[0].New[1]
	assert.Equal(t, state.StatusNew, fa.Status)
	assert.Equal(t, a, fa.Finding)
	assert.True(t, fa.FirstSeen.Equal(at(1)))
	assert.True(t, fa.LastSeen.Equal(at(1)))
	assert.Nil(t, fa.ResolvedAt)
	assert.Zero(t, fa.ReopenedCount)

	// Step 2: a refreshed: values, severity and message updated, first
	// seen kept. It now sorts first as critical.
	fa = trs[1].StillOpen[0]
	assert.Equal(t, state.StatusOpen, fa.Status)
	assert.Equal(t, a2, fa.Finding)
	assert.True(t, fa.FirstSeen.Equal(at(1)))
	assert.True(t, fa.LastSeen.Equal(at(2)))

	// Step 3: b resolved at the run's finish, last seen in step 2.
	fb := trs[2].Resolved[0]
	assert.Equal(t, state.StatusResolved, fb.Status)
	require.NotNil(t, fb.ResolvedAt)
	assert.True(t, fb.ResolvedAt.Equal(at(3)))
	assert.True(t, fb.LastSeen.Equal(at(2)))

	// Step 4: b reopened.
	fb = trs[3].Reopened[0]
	assert.Equal(t, state.StatusReopened, fb.Status)
	assert.Nil(t, fb.ResolvedAt)
	assert.Equal(t, 1, fb.ReopenedCount)
	assert.True(t, fb.FirstSeen.Equal(at(1)))
	assert.True(t, fb.LastSeen.Equal(at(4)))

	// Step 5: resolved again; the reopen count stays.
	fb = trs[4].Resolved[1]
	require.Equal(t, b.Fingerprint, fb.Fingerprint)
	assert.Equal(t, 1, fb.ReopenedCount)
	require.NotNil(t, fb.ResolvedAt)
	assert.True(t, fb.ResolvedAt.Equal(at(5)))

	runs, err := s.LastRuns(t.Context())
	require.NoError(t, err)
	last := runs["field_mismatch"]
	assert.Equal(t, state.Run{
		Check: "field_mismatch", StartedAt: at(5).Add(-30 * time.Second), FinishedAt: at(5),
		Outcome: state.OutcomeOK, Findings: 0, New: 0, Resolved: 2,
	}, normalizeRun(last))
	assert.Equal(t, 5, queryInt(t, pool, `SELECT count(*) FROM tenantdrift.runs`))
	assert.Equal(t, []int{2, 0, 0, 0, 0}, queryInts(t, pool, `SELECT new FROM tenantdrift.runs ORDER BY id`))
	assert.Equal(t, []int{0, 0, 1, 0, 2}, queryInts(t, pool, `SELECT resolved FROM tenantdrift.runs ORDER BY id`))
	assert.Equal(t, []int{2, 2, 1, 2, 0}, queryInts(t, pool, `SELECT findings FROM tenantdrift.runs ORDER BY id`))
}

func normalizeRun(r state.Run) state.Run {
	r.StartedAt, r.FinishedAt = r.StartedAt.UTC(), r.FinishedAt.UTC()
	return r
}

func queryInts(t testing.TB, pool *pgxpool.Pool, sql string) []int {
	t.Helper()
	rows, err := pool.Query(t.Context(), sql)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	return out
}

func TestErroredRunResolvesNothing(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := open(t, pool)
	a := finding("db_unreachable", "acme", "", "critical")
	b := finding("db_unreachable", "bolt", "", "critical")
	c := finding("db_unreachable", "core", "", "critical")
	record(t, s, result("db_unreachable", a, b), 1)

	// Failed runs, with and without partial findings, change nothing.
	for i, fs := range [][]check.Finding{nil, {c}} {
		res := result("db_unreachable", fs...)
		res.Status, res.Err = check.StatusError, errors.New("connect landlord: connection refused")
		tr, err := s.RecordRun(t.Context(), res, at(2+i), at(2+i))
		require.NoError(t, err)
		assert.Equal(t, state.Transitions{}, tr)
	}

	open, err := s.OpenFindings(t.Context())
	require.NoError(t, err)
	assert.ElementsMatch(t, fps(a, b), fingerprints(open))
	for _, f := range open {
		assert.True(t, f.LastSeen.Equal(at(1)), "last seen moved by an errored run")
	}

	runs, err := s.LastRuns(t.Context())
	require.NoError(t, err)
	assert.Equal(t, state.Run{
		Check: "db_unreachable", StartedAt: at(3), FinishedAt: at(3), Outcome: state.OutcomeError,
		Error: "connect landlord: connection refused",
	}, normalizeRun(runs["db_unreachable"]))
	ok, err := s.LastSuccess(t.Context())
	require.NoError(t, err)
	assert.True(t, ok["db_unreachable"].Equal(at(1)))
	assert.Equal(t, 3, queryInt(t, pool, `SELECT count(*) FROM tenantdrift.runs`))
}

func TestChecksAreIndependent(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := open(t, pool)
	x := finding("registry_missing", "acme", "", "critical")
	y := finding("registry_orphan", "acme", "", "warning")
	record(t, s, result("registry_missing", x), 1)
	record(t, s, result("registry_orphan", y), 2)

	tr := record(t, s, result("registry_missing"), 3)
	assert.Equal(t, fps(x), fingerprints(tr.Resolved))
	tr = record(t, s, result("registry_orphan", y), 4)
	assert.Equal(t, fps(y), fingerprints(tr.StillOpen))
	assert.Empty(t, tr.New)

	open, err := s.OpenFindings(t.Context())
	require.NoError(t, err)
	assert.Equal(t, fps(y), fingerprints(open))
}

func TestFingerprintHeldByAnotherCheck(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := open(t, pool)
	x := finding("one", "acme", "", "critical")
	y := finding("two", "bolt", "", "warning")
	y.Fingerprint = x.Fingerprint // a collision, in theory only
	record(t, s, result("one", x), 1)

	tr := record(t, s, result("two", y), 2)
	assert.Equal(t, state.Transitions{}, tr, "the other check's finding is left alone")
	open, err := s.OpenFindings(t.Context())
	require.NoError(t, err)
	require.Len(t, open, 1)
	assert.Equal(t, "one", open[0].Check)
	assert.Equal(t, "acme", open[0].TenantSlug)
	assert.True(t, open[0].LastSeen.Equal(at(1)))
}

func TestRecordRunFillsCheckAndFingerprint(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := open(t, pool)
	f := check.Finding{TenantID: "7", TenantSlug: "acme", Field: "name", Severity: "info"}
	dup := f
	dup.Message = "the same drift reported twice"
	tr := record(t, s, result("name_check", f, dup), 1)
	require.Len(t, tr.New, 1)
	got := tr.New[0]
	assert.Equal(t, "name_check", got.Check)
	f.Check = "name_check"
	assert.Equal(t, check.Fingerprint(f), got.Fingerprint)
	assert.Empty(t, got.Message, "the first of repeated fingerprints wins")
	runs, err := s.LastRuns(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, runs["name_check"].Findings)
}

func TestLastRunsAndLastSuccess(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := open(t, pool)

	runs, err := s.LastRuns(t.Context())
	require.NoError(t, err)
	assert.Empty(t, runs)
	ok, err := s.LastSuccess(t.Context())
	require.NoError(t, err)
	assert.Empty(t, ok)

	failed := result("b")
	failed.Err = errors.New("timed out after 1m0s: context deadline exceeded")
	record(t, s, result("a", finding("a", "acme", "", "info")), 1) // drift
	record(t, s, result("a"), 2)                                   // ok
	_, err = s.RecordRun(t.Context(), failed, at(3), at(4))        // error
	require.NoError(t, err)
	record(t, s, result("b"), 5)                            // ok
	_, err = s.RecordRun(t.Context(), failed, at(6), at(7)) // error after success
	require.NoError(t, err)
	require.NoError(t, s.RecordSkipped(t.Context(), "a", at(8)))
	require.NoError(t, s.RecordSkipped(t.Context(), "c", at(9)))

	runs, err = s.LastRuns(t.Context())
	require.NoError(t, err)
	require.Len(t, runs, 3)
	assert.Equal(t, state.Run{Check: "a", StartedAt: at(8), FinishedAt: at(8), Outcome: state.OutcomeSkipped}, normalizeRun(runs["a"]))
	assert.Equal(t, state.Run{Check: "b", StartedAt: at(6), FinishedAt: at(7), Outcome: state.OutcomeError, Error: failed.Err.Error()}, normalizeRun(runs["b"]))
	assert.Equal(t, state.OutcomeSkipped, runs["c"].Outcome)

	ok, err = s.LastSuccess(t.Context())
	require.NoError(t, err)
	require.Len(t, ok, 2, "skipped-only check c has no success")
	assert.True(t, ok["a"].Equal(at(2)), "a: %s", ok["a"])
	assert.True(t, ok["b"].Equal(at(5)), "b: %s", ok["b"])

	err = s.RecordSkipped(t.Context(), "", at(10))
	require.Error(t, err)
}

func TestPrune(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	day := 24 * time.Hour
	now := t0.Add(100 * day)
	s, err := state.Open(t.Context(), pool, "", func() time.Time { return now })
	require.NoError(t, err)

	old := finding("c", "old", "", "info")       // resolved 40 days ago
	recent := finding("c", "recent", "", "info") // resolved 10 days ago
	ancient := finding("c", "ancient", "", "info")
	run := func(when time.Time, fs ...check.Finding) {
		_, err := s.RecordRun(t.Context(), result("c", fs...), when, when)
		require.NoError(t, err)
	}
	run(now.Add(-50*day), old, recent, ancient) // ancient stays open from here on
	run(now.Add(-40*day), recent, ancient)
	run(now.Add(-10*day), ancient)
	run(now.Add(-time.Hour), ancient)

	nf, nr, err := s.Prune(t.Context(), 30*day)
	require.NoError(t, err)
	assert.Equal(t, int64(1), nf)
	assert.Equal(t, int64(2), nr)
	open, err := s.OpenFindings(t.Context())
	require.NoError(t, err)
	assert.Equal(t, fps(ancient), fingerprints(open), "open findings are never pruned")
	assert.Equal(t, 2, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.findings"))
	assert.Equal(t, 2, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.runs"))

	// Pruning again with the same retention finds nothing more.
	nf, nr, err = s.Prune(t.Context(), 30*day)
	require.NoError(t, err)
	assert.Zero(t, nf)
	assert.Zero(t, nr)

	nf, nr, err = s.Prune(t.Context(), 5*day)
	require.NoError(t, err)
	assert.Equal(t, int64(1), nf)
	assert.Equal(t, int64(1), nr)

	for _, retention := range []time.Duration{0, -day} {
		_, _, err = s.Prune(t.Context(), retention)
		require.Error(t, err, "retention %s", retention)
	}
	assert.Equal(t, 1, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.runs"))
}

func TestOddData(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := open(t, pool)
	tests := []struct {
		name string
		in   check.Finding
		want check.Finding // zero: same as in
	}{
		{name: "unicode", in: check.Finding{TenantID: "ü-1", TenantSlug: "çafé-東京-🚀", DatabaseName: "tenant_ß",
			Field: "naïve", Reason: "mismatch", Expected: "Ωmega", Actual: "ωmega", Message: "right-to-left: שלום"}},
		{name: "quotes", in: check.Finding{TenantID: `'; DROP TABLE findings; --`, TenantSlug: `o"brien`,
			Field: `a\b`, Expected: `{"json": "yes"}`, Actual: "$1 $$ @name", Message: "line1\nline2\ttab\r"}},
		{name: "empty and null-ish", in: check.Finding{TenantID: "", TenantSlug: "NULL", DatabaseName: "",
			Field: "", Reason: "null", Expected: "", Actual: "\\N", Message: ""}},
		{name: "unstorable bytes", in: check.Finding{TenantID: "nul", Expected: "a\x00b", Actual: "\xff\xfe", Message: "ok\x00"},
			want: check.Finding{TenantID: "nul", Expected: "a\uFFFDb", Actual: "\uFFFD", Message: "ok\uFFFD"}},
	}
	var in []check.Finding
	want := map[string]check.Finding{}
	for _, tt := range tests {
		f := tt.in
		f.Check, f.Severity = "odd", "warning"
		f.Fingerprint = check.Fingerprint(f)
		w := tt.want
		if w == (check.Finding{}) {
			w = f
		}
		w.Check, w.Severity, w.Fingerprint = f.Check, f.Severity, f.Fingerprint
		want[tt.name] = w
		in = append(in, f)
	}
	tr := record(t, s, result("odd", in...), 1)
	require.Len(t, tr.New, len(tests))
	open, err := s.OpenFindings(t.Context())
	require.NoError(t, err)
	require.Len(t, open, len(tests))
	byFP := map[string]check.Finding{}
	for _, f := range open {
		byFP[f.Fingerprint] = f.Finding
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := want[tt.name]
			assert.Equal(t, w, byFP[w.Fingerprint])
		})
	}

	res := result("odd")
	res.Err = errors.New("bad byte \x00 in \xff error")
	_, err = s.RecordRun(t.Context(), res, at(2), at(2))
	require.NoError(t, err)
	runs, err := s.LastRuns(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "bad byte \uFFFD in \uFFFD error", runs["odd"].Error)
}

// TestRecordRunAtomic makes the last statement of RecordRun fail, or hang
// until the context ends, and checks that nothing it did before survives.
func TestRecordRunAtomic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trigger string
		timeout time.Duration
	}{
		{"statement fails", `RAISE EXCEPTION 'runs are read-only today'`, 0},
		{"context cancelled", `PERFORM pg_sleep(30)`, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := pgtest.NewPool(t)
			s := open(t, pool)
			a := finding("c", "acme", "", "warning")
			b := finding("c", "bolt", "", "warning")
			record(t, s, result("c", a), 1)

			_, err := pool.Exec(t.Context(), fmt.Sprintf(`
				CREATE FUNCTION tenantdrift.block() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN %s; RETURN NEW; END $$;
				CREATE TRIGGER block BEFORE INSERT ON tenantdrift.runs
				FOR EACH ROW EXECUTE FUNCTION tenantdrift.block();`, tt.trigger))
			require.NoError(t, err)

			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			begun := time.Now()
			_, err = s.RecordRun(ctx, result("c", b), at(2), at(2)) // would resolve a, open b
			require.Error(t, err)
			assert.Less(t, time.Since(begun), 20*time.Second)

			open, err := s.OpenFindings(t.Context())
			require.NoError(t, err)
			assert.Equal(t, fps(a), fingerprints(open))
			assert.True(t, open[0].LastSeen.Equal(at(1)))
			assert.Equal(t, 1, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.findings"))
			assert.Equal(t, 1, queryInt(t, pool, "SELECT count(*) FROM tenantdrift.runs"))
		})
	}
}

// manyFindings returns n findings of check name, one per tenant.
func manyFindings(name string, n int) []check.Finding {
	fs := make([]check.Finding, n)
	for i := range fs {
		fs[i] = finding(name, fmt.Sprintf("tenant-%06d", i), "database_name", "warning")
	}
	return fs
}

func TestRecordRunLarge(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := open(t, pool)
	const n = 20_000
	fs := manyFindings("big", n)

	begun := time.Now()
	tr := record(t, s, result("big", fs...), 1)
	assert.Len(t, tr.New, n)
	t.Logf("first run, %d new: %s", n, time.Since(begun))

	begun = time.Now()
	tr = record(t, s, result("big", fs[:n/2]...), 2)
	assert.Len(t, tr.StillOpen, n/2)
	assert.Len(t, tr.Resolved, n/2)
	t.Logf("second run, %d still open, %d resolved: %s", n/2, n/2, time.Since(begun))

	begun = time.Now()
	tr = record(t, s, result("big", fs...), 3)
	assert.Len(t, tr.StillOpen, n/2)
	assert.Len(t, tr.Reopened, n/2)
	assert.Empty(t, tr.New)
	t.Logf("third run, %d reopened: %s", n/2, time.Since(begun))

	open, err := s.OpenFindings(t.Context())
	require.NoError(t, err)
	assert.Len(t, open, n)
}

// BenchmarkRecordRun measures a steady-state run of 10,000 findings that
// are all still open.
func BenchmarkRecordRun(b *testing.B) {
	pool := pgtest.NewPool(b)
	s := open(b, pool)
	res := result("bench", manyFindings("bench", 10_000)...)
	record(b, s, res, 0)
	i := 0
	for b.Loop() {
		i++
		tr, err := s.RecordRun(b.Context(), res, at(i), at(i))
		if err != nil {
			b.Fatal(err)
		}
		if len(tr.StillOpen) != 10_000 {
			b.Fatalf("still open: %d", len(tr.StillOpen))
		}
	}
}
