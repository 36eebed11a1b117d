package notify

import (
	"context"
	"sync"
	"time"
)

// limiter spaces requests with the same key (a channel) at least interval
// apart; different keys do not wait for each other.
type limiter struct {
	interval time.Duration
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error

	mu   sync.Mutex
	next map[string]time.Time // earliest start of the next request per key
}

// wait blocks until a request with key may start, or ctx is done.
func (l *limiter) wait(ctx context.Context, key string) error {
	l.mu.Lock()
	now := l.now()
	at := l.next[key]
	if at.Before(now) {
		at = now
	}
	l.next[key] = at.Add(l.interval)
	l.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		return l.sleep(ctx, d)
	}
	return nil
}

// hold keeps requests with key from starting before until (a rate limit's
// Retry-After).
func (l *limiter) hold(key string, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until.After(l.next[key]) {
		l.next[key] = until
	}
}

// sleepContext waits for d or until ctx is done, returning ctx's error.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
