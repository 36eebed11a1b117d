// Package leader keeps one tenantdrift replica active: the one holding a
// PostgreSQL session-level advisory lock on a dedicated connection (never a
// pooled one, whose session could be reused or recycled under the lock).
// The leader checks that connection every heartbeat and steps down the
// moment it fails; followers retry the lock every heartbeat, so one takes
// over within two heartbeats of the leader's session ending.
package leader

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Key is the advisory lock key: "tdleader" in ASCII, fixed so that every
// replica, of any version, contends for the same lock. It must differ from
// the state store's migration lock ("tenantdr").
const Key int64 = 0x74646c6561646572

// Elector runs the election. Its methods are safe for concurrent use.
type Elector struct {
	connect   func(ctx context.Context) (*pgx.Conn, error)
	heartbeat time.Duration
	timeout   time.Duration
	logger    *slog.Logger
	onChange  func(leader bool)

	mu     sync.Mutex
	term   context.Context
	cancel context.CancelFunc
	err    error
}

// Options configure an Elector.
type Options struct {
	// Connect opens the dedicated connection the lock lives on.
	Connect   func(ctx context.Context) (*pgx.Conn, error)
	Heartbeat time.Duration
	Logger    *slog.Logger
	// OnChange hears every change of leadership.
	OnChange func(leader bool)
}

// New returns an Elector; Run starts it.
func New(o Options) *Elector {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnChange == nil {
		o.OnChange = func(bool) {}
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	// Connecting, locking and pinging get at least two seconds, so a busy
	// database does not make leadership flap with a short heartbeat.
	return &Elector{connect: o.Connect, heartbeat: o.Heartbeat, timeout: max(o.Heartbeat, 2*time.Second), logger: o.Logger, onChange: o.OnChange}
}

// Leading returns the context of the current term and true while this
// replica leads. The context is cancelled the moment leadership is lost, so
// work started under it stops at once.
func (e *Elector) Leading() (context.Context, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term == nil || e.term.Err() != nil {
		return nil, false
	}
	return e.term, true
}

// IsLeader reports whether this replica leads now.
func (e *Elector) IsLeader() bool {
	_, ok := e.Leading()
	return ok
}

// LastError is why this replica last failed to reach the lock's database,
// nil when it reached it.
func (e *Elector) LastError() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (e *Elector) setErr(err error) {
	e.mu.Lock()
	e.err = err
	e.mu.Unlock()
}

// Run contends for leadership until ctx ends, then releases the lock (by
// closing its session) and returns.
func (e *Elector) Run(ctx context.Context) {
	t := time.NewTicker(e.heartbeat)
	defer t.Stop()
	for {
		e.attempt(ctx, t)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// attempt connects, tries the lock, and while it holds it, heartbeats until
// the connection fails or ctx ends.
func (e *Elector) attempt(ctx context.Context, t *time.Ticker) {
	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	conn, err := e.connect(cctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			e.setErr(err)
			e.logger.Warn("leader election cannot reach the database", "err", err)
		}
		return
	}
	defer conn.Close(context.WithoutCancel(ctx)) // ends the session, which releases the lock
	qctx, cancel := context.WithTimeout(ctx, e.timeout)
	got, err := TryLock(qctx, conn)
	cancel()
	if err != nil {
		e.setErr(err)
		return
	}
	e.setErr(nil)
	if !got {
		return
	}
	term, end := context.WithCancel(ctx)
	e.mu.Lock()
	e.term, e.cancel = term, end
	e.mu.Unlock()
	e.logger.Info("became leader")
	e.onChange(true)
	defer func() {
		e.mu.Lock()
		e.term, e.cancel = nil, nil
		e.mu.Unlock()
		end()
		if ctx.Err() != nil {
			e.logger.Info("leadership released")
		} else {
			e.logger.Warn("leadership lost")
		}
		e.onChange(false)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, e.timeout)
		err := conn.Ping(hctx)
		cancel()
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				e.setErr(err)
			}
			return
		}
	}
}

// Locker runs a query on one session; *pgx.Conn and *pgxpool.Conn are.
type Locker interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// TryLock takes the leader lock on conn's session if no one holds it, and
// reports whether it did. The session holds it until it ends or calls
// pg_advisory_unlock(Key): something that must not run beside a leader
// (repair --apply) takes it for as long as it runs.
func TryLock(ctx context.Context, conn Locker) (bool, error) {
	var got bool
	err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", Key).Scan(&got)
	return got, err
}
