package app

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// progress returns a hook that shows a long check's progress on stderr
// when stderr is a terminal, and nil otherwise: nothing of it reaches
// stdout, JSON output or logs that are not a terminal.
func (r *runtime) progress() func(check string, done, total int) {
	f, ok := r.env.Stderr.(*os.File)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	var mu sync.Mutex
	start := time.Now()
	last := time.Time{}
	return func(check string, done, total int) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if done < total && now.Sub(last) < 200*time.Millisecond {
			return
		}
		last = now
		elapsed := now.Sub(start).Seconds()
		rate := float64(done) / max(elapsed, 0.001)
		left := time.Duration(float64(total-done)/max(rate, 0.001)) * time.Second
		fmt.Fprintf(f, "\r\033[K%s: %d/%d tenant databases, %.0f/s, %s left", check, done, total, rate, left.Round(time.Second))
		r.progressShown = true
	}
}

// endProgress ends the progress line, if one was drawn.
func (r *runtime) endProgress() {
	if r.progressShown {
		fmt.Fprint(r.env.Stderr, "\r\033[K")
		r.progressShown = false
	}
}
