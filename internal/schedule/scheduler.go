package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Job is one scheduled piece of work, in tenantdrift one check.
type Job struct {
	// Name identifies the job in logs, in OnSkip and OnPanic, and in RunNow.
	// It must be unique within a Scheduler.
	Name     string
	Schedule Schedule
	// Timeout bounds every run: Run's ctx is cancelled after it.
	Timeout time.Duration
	// Run does the work. It should return soon after ctx is done.
	Run func(ctx context.Context)
}

// Options configure a Scheduler. Every field is optional.
type Options struct {
	// Logger receives the scheduler's logs; nil discards them.
	Logger *slog.Logger
	// OnSkip hears of every run skipped because the job's previous run was
	// still going (on a tick or through RunNow).
	OnSkip func(name string)
	// OnPanic hears of every run that panicked, with the panic value, after
	// the scheduler has logged it.
	OnPanic func(name string, v any)
	// Now reads the clock for run durations; nil means time.Now. The cron
	// ticks themselves follow the wall clock: cron v3.0.1 has no clock to
	// inject.
	Now func() time.Time
}

// Scheduler runs Jobs on their schedules. A run is skipped while the same
// job's previous run is still going; a panic in a run is recovered; every
// run has its own deadline. Its methods are safe for concurrent use. A
// Scheduler is started at most once.
type Scheduler struct {
	logger  *slog.Logger
	onSkip  func(name string)
	onPanic func(name string, v any)
	now     func() time.Time
	cron    *cron.Cron

	mu     sync.Mutex
	state  state
	jobs   map[string]*entry
	order  []*entry
	cancel context.CancelFunc // cancels every run; set by Start
	runs   sync.WaitGroup     // runs started by RunNow
	done   chan struct{}      // closed once every run has ended after Stop
}

type state int

const (
	stateNew state = iota
	stateRunning
	stateStopped
)

// entry is an added job with its overlap token and, once started, its
// wrapped cron.Job.
type entry struct {
	job Job
	// token holds one value while a run is in flight.
	token chan struct{}
	// run is the job wrapped in the overlap guard and the panic recovery;
	// set by Start.
	run cron.Job
}

// New returns a Scheduler with no jobs; Add them, then Start it.
func New(opts Options) *Scheduler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.OnSkip == nil {
		opts.OnSkip = func(string) {}
	}
	if opts.OnPanic == nil {
		opts.OnPanic = func(string, any) {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := cron.New(
		cron.WithLocation(time.UTC),
		cron.WithParser(cron.NewParser(cron.Minute|cron.Hour|cron.Dom|cron.Month|cron.Dow|cron.Descriptor)),
		cron.WithLogger(cronLogger{opts.Logger}),
	)
	return &Scheduler{
		logger:  opts.Logger,
		onSkip:  opts.OnSkip,
		onPanic: opts.OnPanic,
		now:     opts.Now,
		cron:    c,
		jobs:    map[string]*entry{},
	}
}

// Add registers a job. It returns an error if the name is empty or already
// taken, the schedule is the zero Schedule, the timeout is not positive, Run
// is nil, or the Scheduler has already been started.
func (s *Scheduler) Add(job Job) error {
	var problem string
	switch {
	case job.Name == "":
		problem = "empty name"
	case job.Schedule.cron == nil:
		problem = "no schedule"
	case job.Timeout <= 0:
		problem = fmt.Sprintf("timeout %s is not positive", job.Timeout)
	case job.Run == nil:
		problem = "no Run function"
	}
	if problem != "" {
		return fmt.Errorf("add job %q: %s", job.Name, problem)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return fmt.Errorf("add job %q: scheduler already started", job.Name)
	}
	if _, dup := s.jobs[job.Name]; dup {
		return fmt.Errorf("add job %q: duplicate name", job.Name)
	}
	e := &entry{job: job, token: make(chan struct{}, 1)}
	s.jobs[job.Name] = e
	s.order = append(s.order, e)
	return nil
}

// Start starts scheduling every added job. Each run's context derives from
// ctx and is cancelled by Stop or when ctx ends; once ctx has ended, ticks
// no longer start runs. Calling Start again, or after Stop, does nothing.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return
	}
	runCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	for _, e := range s.order {
		// The guard is outermost so that a recovered panic still releases
		// the token: see the package comment.
		chain := cron.NewChain(s.skipIfStillRunning(e), s.recoverPanic(e.job.Name))
		e.run = chain.Then(cron.FuncJob(func() { s.execute(runCtx, e.job) }))
		s.cron.Schedule(e.job.Schedule, e.run)
	}
	s.cron.Start()
	s.state = stateRunning
	s.logger.Debug("scheduler started", "jobs", len(s.order))
}

// RunNow starts one run of the named job at once, in its own goroutine,
// through the same overlap guard, panic recovery and timeout as a tick: if
// the job's previous run is still going, this run is skipped and OnSkip is
// called. It returns false, and runs nothing, if there is no such job or
// the Scheduler is not running (not yet started, or stopped).
func (s *Scheduler) RunNow(name string) bool {
	s.mu.Lock()
	e, ok := s.jobs[name]
	if !ok || s.state != stateRunning {
		s.mu.Unlock()
		return false
	}
	s.runs.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.runs.Done()
		e.run.Run()
	}()
	return true
}

// Stop stops scheduling, cancels the context of every run in flight and
// waits up to grace for them to return. It returns nil once they have all
// returned, or, after grace, an error naming the jobs still running. Calling
// it again waits again; calling it on a Scheduler never started returns nil
// and keeps it from starting.
func (s *Scheduler) Stop(grace time.Duration) error {
	s.mu.Lock()
	switch s.state {
	case stateNew:
		s.state = stateStopped
	case stateRunning:
		s.state = stateStopped
		cronDone := s.cron.Stop() // no tick starts a run after this returns
		s.cancel()
		done := make(chan struct{})
		go func() {
			<-cronDone.Done()
			s.runs.Wait()
			close(done)
		}()
		s.done = done
	}
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return nil
	}

	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
	}
	var running []string
	for _, e := range s.order {
		if len(e.token) > 0 {
			running = append(running, e.job.Name)
		}
	}
	if len(running) == 0 { // the last one returned just now
		return nil
	}
	slices.Sort(running)
	return fmt.Errorf("stop scheduler: still running after %s: %s", grace, strings.Join(running, ", "))
}

// execute is one run: the job under its own deadline, derived from runCtx.
func (s *Scheduler) execute(runCtx context.Context, job Job) {
	if runCtx.Err() != nil {
		s.logger.Debug("run not started: scheduler stopping", "check", job.Name)
		return
	}
	ctx, cancel := context.WithTimeout(runCtx, job.Timeout)
	defer cancel()
	start := s.now()
	job.Run(ctx)
	s.logger.Debug("run returned", "check", job.Name, "duration", s.now().Sub(start), "timed_out", errors.Is(ctx.Err(), context.DeadlineExceeded))
}

// skipIfStillRunning is the overlap guard: a run that finds the job's
// previous run still going is skipped and reported to OnSkip. Unlike
// cron.SkipIfStillRunning in v3.0.1, it releases the token in a defer, so
// even a panic that gets past the recovery inside it cannot keep the job
// skipped forever.
func (s *Scheduler) skipIfStillRunning(e *entry) cron.JobWrapper {
	return func(j cron.Job) cron.Job {
		return cron.FuncJob(func() {
			select {
			case e.token <- struct{}{}:
				defer func() { <-e.token }()
				j.Run()
			default:
				s.logger.Debug("run skipped: previous run still going", "check", e.job.Name)
				s.onSkip(e.job.Name)
			}
		})
	}
}

// recoverPanic recovers a panic in a run, logs it once at error level
// (the stack only at debug level) and reports it to OnPanic.
func (s *Scheduler) recoverPanic(name string) cron.JobWrapper {
	return func(j cron.Job) cron.Job {
		return cron.FuncJob(func() {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				s.logger.Error("run panicked", "check", name, "panic", fmt.Sprint(v))
				s.logger.Debug("run panic stack", "check", name, "stack", string(debug.Stack()))
				s.onPanic(name, v)
			}()
			j.Run()
		})
	}
}

// cronLogger adapts slog to cron.Logger. The library's own messages ("wake",
// "run", "skip"...) become the "event" attribute of a static message; its
// routine Info goes to debug level.
type cronLogger struct{ logger *slog.Logger }

var _ cron.Logger = cronLogger{}

func (l cronLogger) Info(msg string, keysAndValues ...any) {
	l.logger.Debug("cron event", append([]any{"event", msg}, keysAndValues...)...)
}

func (l cronLogger) Error(err error, msg string, keysAndValues ...any) {
	l.logger.Error("cron error", append([]any{"event", msg, "err", err}, keysAndValues...)...)
}
