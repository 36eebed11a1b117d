package check_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/check"
)

func TestRunOne(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cases := []struct {
		name   string
		fn     check.Func
		status string
		err    string
	}{
		{"ok", func(context.Context, check.Env) ([]check.Finding, error) { return nil, nil }, check.StatusOK, ""},
		{"drift", func(context.Context, check.Env) ([]check.Finding, error) {
			return []check.Finding{{TenantID: "t1", Reason: "r"}}, nil
		}, check.StatusDrift, ""},
		{"error", func(context.Context, check.Env) ([]check.Finding, error) { return nil, errors.New("boom") }, check.StatusError, "boom"},
		{"panic", func(context.Context, check.Env) ([]check.Finding, error) { panic("kaboom") }, check.StatusError, "panicked: kaboom"},
		{"timeout", func(ctx context.Context, _ check.Env) ([]check.Finding, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, check.StatusError, "timed out after 10ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := check.RunOne(context.Background(), check.Instance{Name: "c", Severity: "warning", Timeout: 10 * time.Millisecond, Check: tc.fn}, check.Env{}, logger)
			assert.Equal(t, tc.status, res.Status)
			if tc.err != "" {
				require.Error(t, res.Err)
				assert.Contains(t, res.Err.Error(), tc.err)
				assert.Empty(t, res.Findings)
			}
			for _, f := range res.Findings {
				assert.Equal(t, "c", f.Check)
				assert.Equal(t, "warning", f.Severity)
				assert.Equal(t, check.Fingerprint(f), f.Fingerprint)
			}
		})
	}
	// A panic is the caller's to log (once); RunOne logs no stack above debug.
	assert.False(t, strings.Contains(logs.String(), "goroutine"), logs.String())
}
