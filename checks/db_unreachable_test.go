package checks_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/mariadbtest"
)

// TestDBUnreachable produces every PostgreSQL-side reason for real.
func TestDBUnreachable(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	l := newLandlord(t).shareable()
	x := suffix(t)
	db := func(n string) string { return "tenant_" + n + "_" + x }
	user := "tenant_user_" + x
	s.role(user, "right-pw", "")
	limited := "tenant_limited_" + x
	s.role(limited, "limited-pw", "CONNECTION LIMIT 1")
	for _, n := range []string{"ok", "wrongpw", "revoked", "closed", "limit", "plain"} {
		s.database(db(n))
	}
	s.exec("REVOKE CONNECT ON DATABASE " + pgx.Identifier{db("revoked")}.Sanitize() + " FROM PUBLIC")
	s.exec("ALTER DATABASE " + pgx.Identifier{db("closed")}.Sanitize() + " ALLOW_CONNECTIONS false")
	// Hold the limited role's only connection.
	held, err := pgx.Connect(context.Background(), "postgres://"+limited+":limited-pw@127.0.0.1:"+itoa(s.port)+"/"+db("limit")+"?sslmode=disable")
	require.NoError(t, err)
	t.Cleanup(func() { _ = held.Close(context.Background()) })

	enc := func(pw string) string { return encrypt(t, testAppKey, pw) }
	h, p := s.host, s.port
	l.row(1, "ok", h, p, db("ok"), user, enc("right-pw"), "pgsql", `{"sslmode": "disable"}`)
	l.row(2, "wrong-password", h, p, db("wrongpw"), user, enc("stale-pw"), "pgsql", nil)
	l.row(3, "dropped", h, p, db("dropped"), user, enc("right-pw"), "pgsql", nil)
	l.row(4, "revoked", h, p, db("revoked"), user, enc("right-pw"), "pgsql", nil)
	l.row(5, "closed", h, p, db("closed"), user, enc("right-pw"), "pgsql", nil)
	l.row(6, "at-limit", h, p, db("limit"), limited, enc("limited-pw"), "pgsql", nil)
	l.row(7, "refused", "127.0.0.1", closedPort(t), db("x7"), user, enc("right-pw"), "pgsql", nil)
	l.row(8, "silent", "127.0.0.1", silentListener(t), db("x8"), user, enc("right-pw"), "pgsql", nil)
	l.row(9, "sqlsrv", h, p, db("x9"), user, enc("right-pw"), "sqlsrv", nil)
	l.row(10, "tls", h, p, db("ok"+"_tls"), user, enc("right-pw"), "pgsql", `{"sslmode": "require"}`)
	// Plaintext passwords are used as they are: this one works.
	l.row(11, "plain", h, p, db("plain"), user, "right-pw", "pgsql", nil)
	// Undecryptable passwords are not probed (credential_undecryptable reports them).
	l.row(12, "rotated", h, p, db("nothing"), user, encrypt(t, testRetiredKey, "right-pw"), "pgsql", nil)
	// A connection_config that is not JSON.
	l.row(13, "bad-config", h, p, db("ok"), user, enc("right-pw"), "pgsql", `{"sslmode": 7}`)

	cfg := keyed()
	cfg.Checks.DBUnreachable.ProbeTimeout = config.Duration(time.Second)
	start := time.Now()
	fs, err := l.runEnv(cfg, config.CheckDBUnreachable)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 4*time.Second, "the silent listener is cut off at its deadline")

	type got struct{ reason, state string }
	res := map[string]got{}
	for _, f := range fs {
		res[f.TenantSlug] = got{f.Reason, ""}
		assert.Equal(t, "critical", f.Severity)
		assert.NotContains(t, f.Message, "right-pw")
		assert.NotContains(t, f.Message, "stale-pw")
		assert.NotContains(t, f.Actual, "right-pw")
	}
	assert.Equal(t, map[string]got{
		"wrong-password": {"auth_failed", ""},
		"dropped":        {"database_missing", ""},
		"revoked":        {"no_connect_privilege", ""},
		"closed":         {"not_accepting", ""},
		"at-limit":       {"too_many_connections", ""},
		"refused":        {"connection_refused", ""},
		"silent":         {"timeout", ""},
		"sqlsrv":         {"unsupported_driver", ""},
		"tls":            {"tls", ""},
		"bad-config":     {"other", ""},
	}, res)
	for _, f := range fs {
		switch f.TenantSlug {
		case "wrong-password":
			assert.Contains(t, f.Message, "SQLSTATE 28P01")
		case "dropped":
			assert.Contains(t, f.Message, "SQLSTATE 3D000")
		case "revoked":
			assert.Contains(t, f.Message, "SQLSTATE 42501")
		case "closed":
			assert.Contains(t, f.Message, "SQLSTATE 55000")
		case "at-limit":
			assert.Contains(t, f.Message, "SQLSTATE 53300")
		}
	}
}

func TestDBUnreachableProgressAndCancel(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	l := newLandlord(t).shareable()
	x := suffix(t)
	user := "tenant_p_" + x
	s.role(user, "pw", "")
	s.database("tenant_p_" + x)
	for i := range 30 {
		l.row(i+1, "t"+itoa(i), s.host, s.port, "tenant_p_"+x, user, encrypt(t, testAppKey, "pw"), "pgsql", `{"sslmode":"disable"}`)
	}
	cfg := keyed()
	insts, err := buildOnly(cfg, config.CheckDBUnreachable)
	require.NoError(t, err)
	reg := resolve(t, l, cfg)
	var calls, last int
	env := check.Env{DB: l.pool, Registry: reg, Now: now, Progress: func(name string, done, total int) {
		assert.Equal(t, "db_unreachable", name)
		assert.Equal(t, 30, total)
		calls++
		last = done
	}}
	fs, err := insts[0].Check.Run(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, fs)
	assert.Equal(t, 30, calls)
	assert.Equal(t, 30, last)

	// A cancelled run is an error, not thirty timeouts.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = insts[0].Check.Run(ctx, check.Env{DB: l.pool, Registry: reg, Now: now})
	require.Error(t, err)
}

// TestDBUnreachableMySQL probes tenants whose database_driver is mysql
// against a real MariaDB.
func TestDBUnreachableMySQL(t *testing.T) {
	t.Parallel()
	m := mariadbtest.Start(t)
	host, port := m.Addr()
	l := newLandlord(t)
	x := suffix(t)
	db, user := "tenant_m_"+x, "tu_"+x
	m.CreateDatabase(t, db)
	m.CreateUser(t, user, "maria-pw")
	m.Exec(t, "GRANT ALL ON "+mariadbtest.QuoteIdent(db)+".* TO ?@'%'", user)
	l.row(1, "maria-ok", host, port, db, user, encrypt(t, testAppKey, "maria-pw"), "mysql", nil)
	l.row(2, "maria-stale", host, port, db+"_2", user, encrypt(t, testAppKey, "old-pw"), "mariadb", nil)
	fs, err := l.runEnv(keyed(), config.CheckDBUnreachable)
	require.NoError(t, err)
	require.Len(t, fs, 1)
	assert.Equal(t, "maria-stale", fs[0].TenantSlug)
	assert.Equal(t, "auth_failed", fs[0].Reason)
	assert.Contains(t, fs[0].Message, "MySQL error 1045")
	assert.NotContains(t, fs[0].Message, "old-pw")
}
