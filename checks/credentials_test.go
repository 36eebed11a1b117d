package checks_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/checks"
	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
	"github.com/tenantdrift/tenantdrift/internal/pgtest"
	"github.com/tenantdrift/tenantdrift/internal/tenant"
)

// Keys of these tests: the current APP_KEY and a retired one.
const (
	testAppKey     = "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	testRetiredKey = "base64:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
)

func encrypter(t *testing.T, key string) *laravel.Encrypter {
	t.Helper()
	k, err := laravel.ParseKey(key)
	require.NoError(t, err)
	e, err := laravel.NewEncrypter("aes-256-cbc", k)
	require.NoError(t, err)
	return e
}

func encrypt(t *testing.T, key, plaintext string) string {
	t.Helper()
	p, err := encrypter(t, key).Encrypt([]byte(plaintext), true)
	require.NoError(t, err)
	return p
}

// keyed is the default configuration with the tests' APP_KEY.
func keyed() *config.Config {
	cfg := config.Default()
	cfg.Laravel.AppKey = testAppKey
	return cfg
}

// suffix makes server-wide names (roles, databases) unique per test.
func suffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// server is the test PostgreSQL server, administered as its superuser.
type server struct {
	t     *testing.T
	host  string
	port  int
	admin *pgxpool.Pool
}

func newServer(t *testing.T) *server {
	t.Helper()
	info := pgtest.Server(t)
	admin, err := pgxpool.New(context.Background(), info.DSN("postgres"))
	require.NoError(t, err)
	t.Cleanup(admin.Close)
	return &server{t: t, host: info.Host, port: info.Port, admin: admin}
}

func (s *server) exec(sql string) {
	s.t.Helper()
	_, err := s.admin.Exec(context.Background(), sql)
	require.NoError(s.t, err, sql)
}

// role creates a login role with a password; dropped at cleanup.
func (s *server) role(name, password string, extra string) {
	s.t.Helper()
	id := pgx.Identifier{name}.Sanitize()
	s.exec(fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' %s", id, password, extra))
	s.t.Cleanup(func() { _, _ = s.admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+id) })
}

// database creates a database; dropped at cleanup.
func (s *server) database(name string) {
	s.t.Helper()
	id := pgx.Identifier{name}.Sanitize()
	s.exec("CREATE DATABASE " + id)
	s.t.Cleanup(func() { _, _ = s.admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)") })
}

// shareable lets several rows name one database (tests pointing many
// tenants at one real database).
func (l *landlord) shareable() *landlord {
	l.exec(`ALTER TABLE tenant_databases DROP CONSTRAINT tenant_databases_database_name_unique`)
	return l
}

// row adds a tenant and its tenant_databases row with explicit connection
// fields; password is stored as given.
func (l *landlord) row(n int, slug, host string, port any, dbName, user, password, driver string, connCfg any) {
	l.t.Helper()
	l.tenant(uuid(n), slug, dbName, old)
	l.exec(`INSERT INTO tenant_databases (id, tenant_id, database_name, slug, database_username, database_password, host, port, database_driver, status, connection_config, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $11)`,
		uuid(100+n), uuid(n), dbName, slug, user, password, host, port, driver, connCfg, now.Add(-old))
}

// runAt is run with a real clock: probes need real deadlines.
func (l *landlord) runEnv(cfg *config.Config, name string) ([]check.Finding, error) {
	l.t.Helper()
	ctx := context.Background()
	insts, err := checks.Build(cfg, []string{name})
	require.NoError(l.t, err)
	reg, err := tenant.Resolve(ctx, l.pool, cfg.Registry, nil)
	require.NoError(l.t, err)
	lc := l.pool.Config().ConnConfig.Config
	res := check.RunOne(ctx, insts[0], check.Env{DB: l.pool, Registry: reg, Now: now, Landlord: &lc}, slog.New(slog.DiscardHandler))
	return res.Findings, res.Err
}

// silentListener accepts connections and never answers.
func silentListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					_ = c.Close()
				}
				close(done)
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port
}

// closedPort is a port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return p
}

var _ = time.Second

func itoa(n int) string { return fmt.Sprint(n) }

func buildOnly(cfg *config.Config, name string) ([]check.Instance, error) {
	return checks.Build(cfg, []string{name})
}

func resolve(t *testing.T, l *landlord, cfg *config.Config) *tenant.Registry {
	t.Helper()
	reg, err := tenant.Resolve(context.Background(), l.pool, cfg.Registry, nil)
	require.NoError(t, err)
	return reg
}
