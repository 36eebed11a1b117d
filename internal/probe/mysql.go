package probe

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// mysqlPort is the MySQL and MariaDB port, for targets that give none.
const mysqlPort = 3306

// mysqlTLSModes maps a target's sslmode onto the driver's built-in TLS
// settings. An empty mode means prefer, as for PostgreSQL. allow has no
// MySQL counterpart; like prefer it takes TLS if the server offers it and
// goes on without otherwise. verify-ca cannot skip the host name check in
// the driver, so it is as strict as verify-full.
var mysqlTLSModes = map[string]string{
	"disable":     "false",
	"allow":       "preferred",
	"prefer":      "preferred",
	"":            "preferred",
	"require":     "skip-verify",
	"verify-ca":   "true",
	"verify-full": "true",
}

// mysqlConfig builds the connection settings of a target field by field:
// no registry value is parsed, so none can add a parameter. The driver
// prints some failures to log instead of returning them.
func mysqlConfig(t Target, timeout time.Duration, log mysql.Logger) (*mysql.Config, error) {
	tlsMode, ok := mysqlTLSModes[t.SSLMode]
	if !ok {
		return nil, fmt.Errorf("unknown sslmode %q", t.SSLMode)
	}
	port := t.Port
	if port == 0 {
		port = mysqlPort
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(t.Host, strconv.Itoa(port))
	cfg.User = t.User
	cfg.Passwd = t.Password
	cfg.DBName = t.Database
	cfg.TLSConfig = tlsMode
	cfg.Timeout = timeout
	cfg.ReadTimeout = timeout
	cfg.WriteTimeout = timeout
	cfg.AllowNativePasswords = true
	cfg.AllowCleartextPasswords = false
	cfg.AllowOldPasswords = false
	cfg.AllowAllFiles = false
	cfg.ParseTime = false
	cfg.ConnectionAttributes = "program_name:tenantdrift"
	// Never the driver's default logger, a global one writing to stderr.
	cfg.Logger = log
	return cfg, nil
}

// mysqlProbe connects to a MySQL or MariaDB target once and runs SELECT 1.
func mysqlProbe(ctx context.Context, t Target, timeout time.Duration) Result {
	if t.Host == "" {
		return Result{Reason: Other, Detail: "no host in the registry or the configuration"}
	}
	var log causeLog
	cfg, err := mysqlConfig(t, timeout, &log)
	if err != nil {
		return Result{Reason: Other, Detail: err.Error()}
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return Result{Reason: Other, Detail: "build connection settings: " + err.Error()}
	}
	db := sql.OpenDB(connector)
	defer func() { _ = db.Close() }()
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(timeout)
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		if errors.Is(err, mysql.ErrInvalidConn) {
			if cause := log.cause(); cause != nil {
				err = cause
			}
		}
		return classifyMySQL(ctx, err)
	}
	return Result{}
}

// causeLog is a mysql.Logger that keeps the first error the driver logs.
// When a connection breaks (a read times out, the server closes it), the
// driver logs the cause and returns only ErrInvalidConn.
type causeLog struct {
	mu    sync.Mutex
	first error
}

// Print implements mysql.Logger.
func (l *causeLog) Print(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range v {
		if err, ok := x.(error); ok && l.first == nil {
			l.first = err
		}
	}
}

func (l *causeLog) cause() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

// classifyMySQL maps a connection error onto a Reason. SQLState holds the
// MySQL error number, which is what MySQL operators know; the SQLSTATE, when
// the server sent one, ends the Detail. The numbers are those MySQL and
// MariaDB share, except where noted.
func classifyMySQL(ctx context.Context, err error) Result {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		r := Result{SQLState: strconv.Itoa(int(myErr.Number)), Detail: myErr.Message}
		if myErr.SQLState != [5]byte{} {
			r.Detail += " (SQLSTATE " + string(myErr.SQLState[:]) + ")"
		}
		switch myErr.Number {
		case 1045, // ER_ACCESS_DENIED_ERROR
			1698: // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
			r.Reason = AuthFailed
		case 1049: // ER_BAD_DB_ERROR
			r.Reason = DatabaseMissing
		// A user with no grant on a database gets 1044 whether it exists or
		// not: the server does not tell strangers which databases exist.
		case 1044, // ER_DBACCESS_DENIED_ERROR
			1129, // ER_HOST_IS_BLOCKED
			1130: // ER_HOST_NOT_PRIVILEGED
			r.Reason = NoConnectPrivilege
		case 1040, // ER_CON_COUNT_ERROR: max_connections
			1203, // ER_TOO_MANY_USER_CONNECTIONS: max_user_connections
			1226: // ER_USER_LIMIT_REACHED: an account's MAX_USER_CONNECTIONS
			r.Reason = TooManyConnections
		case 1053: // ER_SERVER_SHUTDOWN
			r.Reason = NotAccepting
		case 3159: // MySQL's ER_SECURE_TRANSPORT_REQUIRED
			r.Reason = TLS
		default:
			r.Reason = Other
		}
		return r
	}
	switch {
	case errors.Is(err, mysql.ErrNoTLS):
		return Result{Reason: TLS, Detail: err.Error()}
	case errors.Is(err, io.ErrUnexpectedEOF):
		// The driver's reads end so when the server hangs up.
		return Result{Reason: Other, Detail: "the server closed the connection"}
	case errors.Is(err, mysql.ErrInvalidConn):
		// The cause was not logged: say what is known.
		if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
			return Result{Reason: Timeout, Detail: "no answer before the deadline"}
		}
		return Result{Reason: Other, Detail: "the connection broke before the server answered"}
	}
	return classifyNet(ctx, err)
}
