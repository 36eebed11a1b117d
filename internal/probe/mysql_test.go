package probe

import (
	"context"
	"database/sql"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/mariadbtest"
)

// mysqlTarget creates, on the test MariaDB, a database and a user named
// name with every privilege on it, and returns a target for them. Both are
// dropped when t ends.
func mysqlTarget(t *testing.T, name, password string) Target {
	t.Helper()
	s := mariadbtest.Start(t)
	s.CreateDatabase(t, name)
	s.CreateUser(t, name, password)
	s.Exec(t, "GRANT ALL ON "+mariadbtest.QuoteIdent(name)+".* TO ?@'%'", name)
	host, port := s.Addr()
	return Target{Host: host, Port: port, Database: name, User: name, Password: password, Driver: DriverMySQL, SSLMode: "disable"}
}

// probeMySQL probes target and checks what holds for every result: the
// password is nowhere in the Detail.
func probeMySQL(t *testing.T, timeout time.Duration, target Target) Result {
	t.Helper()
	p := &Prober{Timeout: timeout}
	res := p.One(t.Context(), target)
	if target.Password != "" {
		assert.NotContains(t, res.Detail, target.Password, "the password leaked into Detail")
	}
	return res
}

func TestMySQLProbeOK(t *testing.T) {
	t.Parallel()
	target := mysqlTarget(t, "probe_ok", "ok-secret-4f1c")
	res := probeMySQL(t, 10*time.Second, target)
	assert.True(t, res.OK(), "%+v", res)
	assert.Empty(t, res.SQLState)
	assert.Positive(t, res.Duration)
}

// Each failure the server reports, produced for real.
func TestMySQLProbeServerReasons(t *testing.T) {
	t.Parallel()
	const password = "reasons-secret-9b7e"
	target := mysqlTarget(t, "probe_reasons", password)
	s := mariadbtest.Start(t)
	s.CreateUser(t, "probe_noprivs", password) // may connect, may not use probe_reasons
	// A grant outlives DROP DATABASE: the user may use the database, which
	// is not there. (Without a grant the server says 1044, not 1049, so as
	// not to tell a stranger which databases exist.)
	s.Exec(t, "GRANT ALL ON `probe_reasons_dropped`.* TO ?@'%'", target.User)

	for _, tc := range []struct {
		name     string
		change   func(*Target)
		reason   Reason
		sqlState string
	}{
		{"wrong password", func(t *Target) { t.Password = "not-" + password }, AuthFailed, "1045"},
		{"unknown user", func(t *Target) { t.User = "probe_nobody" }, AuthFailed, "1045"},
		{"granted database missing", func(t *Target) { t.Database = "probe_reasons_dropped" }, DatabaseMissing, "1049"},
		{"ungranted database missing", func(t *Target) { t.Database = "probe_reasons_never" }, NoConnectPrivilege, "1044"},
		{"no privilege on the database", func(t *Target) { t.User = "probe_noprivs" }, NoConnectPrivilege, "1044"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := target
			tc.change(&target)
			res := probeMySQL(t, 10*time.Second, target)
			assert.Equal(t, tc.reason, res.Reason, "%+v", res)
			assert.Equal(t, tc.sqlState, res.SQLState)
			assert.Contains(t, res.Detail, "(SQLSTATE ")
		})
	}
}

func TestMySQLProbeTooManyConnections(t *testing.T) {
	t.Parallel()
	target := mysqlTarget(t, "probe_maxconn", "maxconn-secret-21d0")
	s := mariadbtest.Start(t)
	s.Exec(t, "ALTER USER ?@'%' WITH MAX_USER_CONNECTIONS 1", target.User)

	// Hold the one connection the user may have.
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(target.Host, strconv.Itoa(target.Port))
	cfg.User, cfg.Passwd, cfg.DBName = target.User, target.Password, target.Database
	cfg.Logger = &mysql.NopLogger{}
	connector, err := mysql.NewConnector(cfg)
	require.NoError(t, err)
	db := sql.OpenDB(connector)
	defer func() { _ = db.Close() }()
	held, err := db.Conn(t.Context())
	require.NoError(t, err)
	defer func() { _ = held.Close() }()
	require.NoError(t, held.PingContext(t.Context()))

	res := probeMySQL(t, 10*time.Second, target)
	assert.Equal(t, TooManyConnections, res.Reason, "%+v", res)
	assert.Equal(t, "1226", res.SQLState)
}

func TestMySQLProbeConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	res := probeMySQL(t, 5*time.Second, Target{Host: "127.0.0.1", Port: port, Database: "d", User: "u", Password: "refused-secret", Driver: "mariadb"})
	assert.Equal(t, ConnectionRefused, res.Reason, "%+v", res)
	assert.Empty(t, res.SQLState)
}

// A server that accepts connections and never answers costs one deadline,
// not more.
func TestMySQLProbeTimeout(t *testing.T) {
	t.Parallel()
	port := silentListener(t)
	const deadline = 500 * time.Millisecond
	begin := time.Now()
	res := probeMySQL(t, deadline, Target{Host: "127.0.0.1", Port: port, Database: "d", User: "u", Password: "silent-secret", Driver: DriverMySQL})
	elapsed := time.Since(begin)
	assert.Equal(t, Timeout, res.Reason, "%+v", res)
	assert.Less(t, elapsed, deadline+time.Second)
	assert.GreaterOrEqual(t, elapsed, deadline-50*time.Millisecond)
}

// A server that hangs up at once is not a timeout.
func TestMySQLProbeServerHangsUp(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	res := probeMySQL(t, 5*time.Second, Target{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, User: "u", Password: "hangup-secret", Driver: DriverMySQL})
	assert.Equal(t, Other, res.Reason, "%+v", res)
	assert.Equal(t, "the server closed the connection", res.Detail)
	assert.Less(t, res.Duration, time.Second)
}

// silentListener listens on 127.0.0.1:0, accepts connections and never
// writes to them, until t ends. It returns the port.
func silentListener(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// Registry values are data: a password, user or database name that looks
// like DSN syntax or carries DSN parameters is sent as it is.
func TestMySQLProbeValuesVerbatim(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, user, password string }{
		{"punctuation", "probe_verbatim1", `p?a&s/s@w:o'r"d (with spaces)`},
		{"dsn parameters", "probe_verbatim2", `x@tcp(10.0.0.1:3306)/other?tls=false&allowCleartextPasswords=true&allowAllFiles=true`},
		{"escapes", "probe_verbatim3", `back\slash %41 +plus #hash ;semi`},
		{"odd user name", "u@h?tls=false&x=/y", "plain-secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := mysqlTarget(t, tc.user, tc.password)
			res := probeMySQL(t, 10*time.Second, target)
			assert.True(t, res.OK(), "%+v", res)

			// And the exact password is needed: one character less fails.
			target.Password = tc.password[:len(tc.password)-1]
			res = probeMySQL(t, 10*time.Second, target)
			assert.Equal(t, AuthFailed, res.Reason, "%+v", res)
		})
	}
}

// No failure's Detail carries the password, whatever the failure.
func TestMySQLProbeDetailHasNoPassword(t *testing.T) {
	t.Parallel()
	const password = "Detail-Secret-77aa"
	target := mysqlTarget(t, "probe_detail", password)
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refusedPort := refused.Addr().(*net.TCPAddr).Port
	require.NoError(t, refused.Close())
	silentPort := silentListener(t)

	for name, change := range map[string]func(*Target){
		"auth":     func(t *Target) { t.User = "probe_nobody" },
		"database": func(t *Target) { t.Database = "probe_nodb" },
		"refused":  func(t *Target) { t.Port = refusedPort },
		"timeout":  func(t *Target) { t.Port = silentPort },
		"tls":      func(t *Target) { t.SSLMode = "require" },
		"sslmode":  func(t *Target) { t.SSLMode = "bogus" },
	} {
		target := target
		change(&target)
		res := probeMySQL(t, time.Second, target)
		require.False(t, res.OK(), name)
		assert.NotContains(t, res.Detail, password, name)
		assert.NotContains(t, res.Detail, "Detail-Secret", name)
	}
}

// The test server has no TLS: the modes that may go without it connect,
// the ones that need it fail as tls.
func TestMySQLProbeSSLModes(t *testing.T) {
	t.Parallel()
	target := mysqlTarget(t, "probe_sslmodes", "sslmodes-secret-0c3e")
	for _, tc := range []struct {
		mode   string
		reason Reason
	}{
		{"", OK},
		{"disable", OK},
		{"allow", OK},
		{"prefer", OK},
		{"require", TLS},
		{"verify-ca", TLS},
		{"verify-full", TLS},
		{"bogus", Other},
	} {
		target := target
		target.SSLMode = tc.mode
		res := probeMySQL(t, 10*time.Second, target)
		assert.Equal(t, tc.reason, res.Reason, "sslmode %q: %+v", tc.mode, res)
	}
}

func TestMySQLConfig(t *testing.T) {
	t.Parallel()
	log := &causeLog{}
	cfg, err := mysqlConfig(Target{Host: "::1", Database: "db?x=1", User: "u", Password: "p&tls=false", SSLMode: "require"}, 3*time.Second, log)
	require.NoError(t, err)
	assert.Equal(t, "tcp", cfg.Net)
	assert.Equal(t, "[::1]:3306", cfg.Addr, "default port")
	assert.Equal(t, "db?x=1", cfg.DBName)
	assert.Equal(t, "p&tls=false", cfg.Passwd)
	assert.Equal(t, "skip-verify", cfg.TLSConfig)
	assert.Equal(t, 3*time.Second, cfg.Timeout)
	assert.Equal(t, 3*time.Second, cfg.ReadTimeout)
	assert.Equal(t, 3*time.Second, cfg.WriteTimeout)
	assert.True(t, cfg.AllowNativePasswords)
	assert.False(t, cfg.AllowCleartextPasswords)
	assert.False(t, cfg.AllowOldPasswords)
	assert.False(t, cfg.AllowAllFiles)
	assert.False(t, cfg.MultiStatements)
	assert.False(t, cfg.InterpolateParams)
	assert.Empty(t, cfg.Params)
	assert.Equal(t, "program_name:tenantdrift", cfg.ConnectionAttributes)
	assert.Same(t, log, cfg.Logger)

	_, err = mysqlConfig(Target{Host: "h", SSLMode: "verify-everything"}, time.Second, log)
	assert.EqualError(t, err, `unknown sslmode "verify-everything"`)
}

// The errors the server sends before authentication, which one test server
// cannot be made to send to one test without disturbing the others.
func TestClassifyMySQL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		number uint16
		state  string
		reason Reason
	}{
		{1040, "", TooManyConnections},
		{1203, "42000", TooManyConnections},
		{1129, "", NoConnectPrivilege},
		{1130, "", NoConnectPrivilege},
		{1698, "28000", AuthFailed},
		{1053, "08S01", NotAccepting},
		{3159, "HY000", TLS},
		{1290, "HY000", Other},
	} {
		e := &mysql.MySQLError{Number: tc.number, Message: "message"}
		copy(e.SQLState[:], tc.state)
		res := classifyMySQL(context.Background(), e)
		assert.Equal(t, tc.reason, res.Reason, tc.number)
		assert.Equal(t, strconv.Itoa(int(tc.number)), res.SQLState)
		if tc.state == "" {
			assert.Equal(t, "message", res.Detail)
		} else {
			assert.Equal(t, "message (SQLSTATE "+tc.state+")", res.Detail)
		}
	}
	assert.Equal(t, TLS, classifyMySQL(context.Background(), mysql.ErrNoTLS).Reason)
}
