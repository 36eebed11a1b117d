package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClassifyNet covers the network reasons a test on loopback cannot
// produce for real (DNS needs a resolver; the rest are produced for real in
// the checks package's tests).
func TestClassifyNet(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		err  error
		want Reason
	}{
		{"dns", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "tenant-7.db.internal", IsNotFound: true}}, DNS},
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, ConnectionRefused},
		{"deadline", fmt.Errorf("connect: %w", context.DeadlineExceeded), Timeout},
		{"io timeout", os.ErrDeadlineExceeded, Timeout},
		{"certificate", &tls.CertificateVerificationError{Err: errors.New("x509: certificate signed by unknown authority")}, TLS},
		{"tls refused", errors.New("server refused TLS connection"), TLS},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), Other},
		{"anything else", errors.New("something odd"), Other},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, classifyNet(ctx, tc.err).Reason)
		})
	}
}

// TestPostgresConfigIgnoresEnvironment proves PG* variables and a passfile
// never reach a tenant probe, and that values are used verbatim.
func TestPostgresConfigIgnoresEnvironment(t *testing.T) {
	dir := t.TempDir()
	pass := dir + "/pgpass"
	require.NoError(t, os.WriteFile(pass, []byte("*:*:*:*:from-passfile\n"), 0o600))
	for k, v := range map[string]string{
		"PGPASSWORD": "from-env", "PGPASSFILE": pass, "PGOPTIONS": "-c statement_timeout=1",
		"PGAPPNAME": "not-us", "PGSSLMODE": "verify-full", "PGTARGETSESSIONATTRS": "read-write", "PGCONNECT_TIMEOUT": "99",
	} {
		t.Setenv(k, v)
	}
	var p Prober
	weird := "db name' options='-c x=1' host=evil"
	cfg, err := p.PostgresConfig(Target{Host: "tenant.db", Port: 6432, Database: weird, User: "u=1 sslmode=disable", Password: "", SSLMode: "disable"}, 3*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "tenant.db", cfg.Host)
	assert.Equal(t, uint16(6432), cfg.Port)
	assert.Equal(t, weird, cfg.Database)
	assert.Equal(t, "u=1 sslmode=disable", cfg.User)
	assert.Empty(t, cfg.Password, "neither PGPASSWORD nor the passfile")
	assert.Equal(t, map[string]string{"application_name": "tenantdrift"}, cfg.RuntimeParams)
	assert.Nil(t, cfg.TLSConfig)
	assert.Empty(t, cfg.Fallbacks)
	assert.Nil(t, cfg.ValidateConnect, "no target_session_attrs from the environment")
	assert.Equal(t, 3*time.Second, cfg.ConnectTimeout)

	// prefer tries TLS, then plain, both to the target's host.
	cfg, err = p.PostgresConfig(Target{Host: "tenant.db", Port: 5432, SSLMode: "prefer"}, time.Second)
	require.NoError(t, err)
	require.NotNil(t, cfg.TLSConfig)
	assert.Equal(t, "tenant.db", cfg.TLSConfig.ServerName)
	require.Len(t, cfg.Fallbacks, 1)
	assert.Equal(t, "tenant.db", cfg.Fallbacks[0].Host)

	_, err = p.PostgresConfig(Target{Host: "h", SSLMode: "disable sslmode=require"}, time.Second)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "unknown sslmode"))
}
