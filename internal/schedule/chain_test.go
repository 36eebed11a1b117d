package schedule

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// panicOnce returns a job that panics on its first run and counts its runs.
func panicOnce(runs *int) cron.Job {
	return cron.FuncJob(func() {
		*runs++
		if *runs == 1 {
			panic("boom")
		}
	})
}

// TestLibraryWrapperOrder shows the hazard in robfig/cron v3.0.1 that
// decides this package's wrapper order: cron.SkipIfStillRunning puts its
// token back without a defer, so with Recover outside it (the order of
// cron.WithChain(cron.Recover(l), cron.SkipIfStillRunning(l))) the job's
// first panic loses the token and every later run is skipped.
func TestLibraryWrapperOrder(t *testing.T) {
	t.Parallel()
	logger := cron.DiscardLogger
	tests := []struct {
		name     string
		chain    cron.Chain
		wantRuns int
	}{
		{"Recover(Skip(job)) skips forever after a panic", cron.NewChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)), 1},
		{"Skip(Recover(job)) runs again", cron.NewChain(cron.SkipIfStillRunning(logger), cron.Recover(logger)), 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var runs int
			job := tc.chain.Then(panicOnce(&runs))
			for range 3 {
				require.NotPanics(t, job.Run)
			}
			assert.Equal(t, tc.wantRuns, runs)
		})
	}
}

// TestOwnWrapperOrder runs this package's wrappers in both orders: in the
// order Start uses, a panicking job runs again; its guard releases the
// token in a defer, so even the reversed order would not lose it (though
// the panic would then escape the guard, which is why Start does not use
// that order).
func TestOwnWrapperOrder(t *testing.T) {
	t.Parallel()
	for _, reversed := range []bool{false, true} {
		var skips, panics int
		s := New(Options{OnSkip: func(string) { skips++ }, OnPanic: func(string, any) { panics++ }})
		e := &entry{job: Job{Name: "flaky"}, token: make(chan struct{}, 1)}
		chain := cron.NewChain(s.skipIfStillRunning(e), s.recoverPanic("flaky"))
		if reversed {
			chain = cron.NewChain(s.recoverPanic("flaky"), s.skipIfStillRunning(e))
		}
		var runs int
		job := chain.Then(panicOnce(&runs))
		for range 3 {
			require.NotPanics(t, job.Run)
		}
		assert.Equal(t, 3, runs, "reversed=%v", reversed)
		assert.Equal(t, 1, panics)
		assert.Zero(t, skips)
		assert.Empty(t, e.token, "the token is free")
	}
}

func TestSkipIfStillRunning(t *testing.T) {
	t.Parallel()
	var skipped []string
	s := New(Options{OnSkip: func(name string) { skipped = append(skipped, name) }})
	e := &entry{job: Job{Name: "slow"}, token: make(chan struct{}, 1)}
	var runs int
	job := s.skipIfStillRunning(e)(cron.FuncJob(func() { runs++ }))

	e.token <- struct{}{} // a run is in flight
	job.Run()
	assert.Zero(t, runs)
	assert.Equal(t, []string{"slow"}, skipped)

	<-e.token // it ended
	job.Run()
	assert.Equal(t, 1, runs)
	assert.Empty(t, e.token)
}

// TestLibraryParsePanics pins the inputs on which cron.ParseStandard
// v3.0.1 panics, and that Parse returns an error for each. If a new
// version stops panicking, the first assertion fails and the workaround
// can be reconsidered.
func TestLibraryParsePanics(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"CRON_TZ=", "TZ=", "TZ=0", "TZ=UTC", "CRON_TZ=Europe/Berlin", "TZ=TZ=TZ="} {
		t.Run(spec, func(t *testing.T) {
			assert.Panics(t, func() { _, _ = cron.ParseStandard(spec) })
			var err error
			require.NotPanics(t, func() { _, err = Parse(spec) })
			assert.Error(t, err)
		})
	}
}

func TestCronLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := cronLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Info("wake", "entry", 1)
	assert.Contains(t, buf.String(), `level=DEBUG msg="cron event" event=wake entry=1`)
	buf.Reset()
	l.Error(assert.AnError, "panic", "entry", 2)
	assert.Contains(t, buf.String(), `level=ERROR msg="cron error" event=panic err="assert.AnError general error for testing" entry=2`)
}
