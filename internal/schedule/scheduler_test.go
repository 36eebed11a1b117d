package schedule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/schedule"
)

// tick is how long a test waits for something an "@every 1s" schedule
// makes happen: the first tick comes within 1s of Start, the next 1s later.
const tick = 3 * time.Second

func mustParse(t *testing.T, spec string) schedule.Schedule {
	t.Helper()
	s, err := schedule.Parse(spec)
	require.NoError(t, err)
	return s
}

// logBuffer collects JSON log lines written concurrently.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records returns the logged records at the given level.
func (b *logBuffer) records(t *testing.T, level slog.Level) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.buf.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["level"] == level.String() {
			out = append(out, rec)
		}
	}
	return out
}

// receive waits for a value on ch.
func receive[T any](t *testing.T, ch <-chan T, within time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		require.FailNow(t, "timed out waiting for "+what)
	}
	var zero T
	return zero
}

// start starts s and stops it when the test ends.
func start(t *testing.T, s *schedule.Scheduler) {
	t.Helper()
	s.Start(t.Context())
	t.Cleanup(func() { _ = s.Stop(time.Second) })
}

// TestPanicThenNextTickRuns is the wrapper-order test: a job that panics on
// its first tick runs again on the next one, because the panic is recovered
// inside the overlap guard, which so gets its token back.
func TestPanicThenNextTickRuns(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	var panics []any
	var mu sync.Mutex
	s := schedule.New(schedule.Options{
		Logger: logs.logger(),
		OnPanic: func(name string, v any) {
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, "flaky", name)
			panics = append(panics, v)
		},
	})
	runs := make(chan int32, 10)
	var n atomic.Int32
	require.NoError(t, s.Add(schedule.Job{
		Name: "flaky", Schedule: mustParse(t, "@every 1s"), Timeout: time.Second,
		Run: func(context.Context) {
			k := n.Add(1)
			runs <- k
			if k == 1 {
				panic("boom")
			}
		},
	}))
	start(t, s)

	assert.Equal(t, int32(1), receive(t, runs, tick, "first run"))
	assert.Equal(t, int32(2), receive(t, runs, tick, "the run after the panic"))

	mu.Lock()
	assert.Equal(t, []any{"boom"}, panics, "OnPanic called once")
	mu.Unlock()
	errs := logs.records(t, slog.LevelError)
	require.Len(t, errs, 1, "the panic is logged once at error level")
	assert.Equal(t, "run panicked", errs[0]["msg"])
	assert.Equal(t, "flaky", errs[0]["check"])
	assert.Equal(t, "boom", errs[0]["panic"])
	assert.NotContains(t, errs[0], "stack")
	line, err := json.Marshal(errs[0])
	require.NoError(t, err)
	assert.NotContains(t, string(line), "goroutine", "no stack trace at error level")

	var stacks int
	for _, rec := range logs.records(t, slog.LevelDebug) {
		if rec["msg"] == "run panic stack" {
			stacks++
			assert.Contains(t, rec["stack"], "goroutine")
		}
	}
	assert.Equal(t, 1, stacks, "the stack is at debug level")
}

func TestOverlapSkipped(t *testing.T) {
	t.Parallel()
	skipped := make(chan string, 10)
	s := schedule.New(schedule.Options{OnSkip: func(name string) { skipped <- name }})
	release := make(chan struct{})
	var runs atomic.Int32
	require.NoError(t, s.Add(schedule.Job{
		Name: "slow", Schedule: mustParse(t, "@every 1s"), Timeout: time.Minute,
		Run: func(ctx context.Context) {
			runs.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
		},
	}))
	start(t, s)

	assert.Equal(t, "slow", receive(t, skipped, tick, "a skipped tick"))
	assert.Equal(t, int32(1), runs.Load(), "no second run while the first blocks")
	close(release)
}

func TestRunNow(t *testing.T) {
	t.Parallel()
	skipped := make(chan string, 10)
	s := schedule.New(schedule.Options{OnSkip: func(name string) { skipped <- name }})
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	require.NoError(t, s.Add(schedule.Job{
		Name: "hourly", Schedule: mustParse(t, "@every 1h"), Timeout: time.Minute,
		Run: func(context.Context) {
			started <- struct{}{}
			<-release
		},
	}))

	assert.False(t, s.RunNow("hourly"), "not started yet")
	start(t, s)
	assert.False(t, s.RunNow("nope"), "unknown job")

	require.True(t, s.RunNow("hourly"))
	receive(t, started, time.Second, "the run")

	assert.True(t, s.RunNow("hourly"), "the job exists; the run is skipped")
	assert.Equal(t, "hourly", receive(t, skipped, time.Second, "the skip"))

	close(release)
	require.NoError(t, s.Stop(time.Second))
	assert.False(t, s.RunNow("hourly"), "stopped")
	assert.Empty(t, started, "only one run started")
}

func TestTimeoutCancelsRun(t *testing.T) {
	t.Parallel()
	s := schedule.New(schedule.Options{})
	type result struct {
		err      error
		deadline bool
		took     time.Duration
	}
	done := make(chan result, 1)
	require.NoError(t, s.Add(schedule.Job{
		Name: "bounded", Schedule: mustParse(t, "@every 1h"), Timeout: 50 * time.Millisecond,
		Run: func(ctx context.Context) {
			begin := time.Now()
			_, ok := ctx.Deadline()
			<-ctx.Done()
			done <- result{ctx.Err(), ok, time.Since(begin)}
		},
	}))
	start(t, s)
	require.True(t, s.RunNow("bounded"))

	res := receive(t, done, 2*time.Second, "the run to time out")
	assert.True(t, res.deadline)
	assert.ErrorIs(t, res.err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, res.took, 40*time.Millisecond)
}

func TestStopCancelsInFlight(t *testing.T) {
	t.Parallel()
	s := schedule.New(schedule.Options{})
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	require.NoError(t, s.Add(schedule.Job{
		Name: "polite", Schedule: mustParse(t, "@every 1h"), Timeout: time.Hour,
		Run: func(ctx context.Context) {
			started <- struct{}{}
			<-ctx.Done()
			ended <- ctx.Err()
		},
	}))
	s.Start(t.Context())
	require.True(t, s.RunNow("polite"))
	receive(t, started, time.Second, "the run")

	const grace = 2 * time.Second
	begin := time.Now()
	require.NoError(t, s.Stop(grace))
	assert.Less(t, time.Since(begin), grace/2)
	assert.ErrorIs(t, receive(t, ended, time.Second, "the run's end"), context.Canceled)
	require.NoError(t, s.Stop(grace), "stopping again finds nothing running")
}

func TestStopNamesStuckJob(t *testing.T) {
	t.Parallel()
	s := schedule.New(schedule.Options{})
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	defer close(release)
	require.NoError(t, s.Add(schedule.Job{
		Name: "stubborn", Schedule: mustParse(t, "@every 1h"), Timeout: time.Hour,
		Run: func(context.Context) { // ignores cancellation
			started <- struct{}{}
			<-release
		},
	}))
	require.NoError(t, s.Add(schedule.Job{
		Name: "polite", Schedule: mustParse(t, "@every 1h"), Timeout: time.Hour,
		Run: func(ctx context.Context) {
			started <- struct{}{}
			<-ctx.Done()
		},
	}))
	s.Start(t.Context())
	require.True(t, s.RunNow("stubborn"))
	require.True(t, s.RunNow("polite"))
	receive(t, started, time.Second, "a run")
	receive(t, started, time.Second, "the other run")

	const grace = 100 * time.Millisecond
	begin := time.Now()
	err := s.Stop(grace)
	took := time.Since(begin)
	require.Error(t, err)
	assert.Equal(t, "stop scheduler: still running after 100ms: stubborn", err.Error())
	assert.GreaterOrEqual(t, took, grace)
	assert.Less(t, took, time.Second)
}

func TestStartContextEnded(t *testing.T) {
	t.Parallel()
	s := schedule.New(schedule.Options{})
	var runs atomic.Int32
	require.NoError(t, s.Add(schedule.Job{
		Name: "late", Schedule: mustParse(t, "@every 1h"), Timeout: time.Minute,
		Run: func(context.Context) { runs.Add(1) },
	}))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s.Start(ctx)
	assert.True(t, s.RunNow("late"))
	require.NoError(t, s.Stop(time.Second))
	assert.Zero(t, runs.Load(), "no run starts once the Start context has ended")
}

func TestAdd(t *testing.T) {
	t.Parallel()
	every := mustParse(t, "@every 1m")
	run := func(context.Context) {}
	tests := []struct {
		name string
		job  schedule.Job
		want string
	}{
		{"empty name", schedule.Job{Schedule: every, Timeout: time.Second, Run: run}, `add job "": empty name`},
		{"zero schedule", schedule.Job{Name: "a", Timeout: time.Second, Run: run}, `add job "a": no schedule`},
		{"zero timeout", schedule.Job{Name: "a", Schedule: every, Run: run}, `add job "a": timeout 0s is not positive`},
		{"negative timeout", schedule.Job{Name: "a", Schedule: every, Timeout: -time.Second, Run: run}, `add job "a": timeout -1s is not positive`},
		{"no run", schedule.Job{Name: "a", Schedule: every, Timeout: time.Second}, `add job "a": no Run function`},
		{"duplicate", schedule.Job{Name: "taken", Schedule: every, Timeout: time.Second, Run: run}, `add job "taken": duplicate name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := schedule.New(schedule.Options{})
			require.NoError(t, s.Add(schedule.Job{Name: "taken", Schedule: every, Timeout: time.Second, Run: run}))
			assert.EqualError(t, s.Add(tc.job), tc.want)
		})
	}

	s := schedule.New(schedule.Options{})
	s.Start(t.Context())
	defer func() { _ = s.Stop(time.Second) }()
	assert.EqualError(t, s.Add(schedule.Job{Name: "late", Schedule: every, Timeout: time.Second, Run: run}), `add job "late": scheduler already started`)
}

func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	s := schedule.New(schedule.Options{})
	require.NoError(t, s.Add(schedule.Job{Name: "a", Schedule: mustParse(t, "@every 1s"), Timeout: time.Second, Run: func(context.Context) {}}))
	require.NoError(t, s.Stop(time.Second))
	s.Start(t.Context())
	assert.False(t, s.RunNow("a"), "a stopped scheduler does not start")
}
