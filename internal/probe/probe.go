// Package probe connects to tenant databases with their registry
// credentials and says, in a small closed set of reasons, why one cannot be
// used. One short-lived connection per database, no pool; every probe has
// its own deadline; a registry value can never add connection parameters.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Reason says why a tenant database cannot be used. The set is closed: it is
// used as a metric label and in alert routing.
type Reason string

// The reasons, as in the db_unreachable check's contract.
const (
	OK                 Reason = ""
	AuthFailed         Reason = "auth_failed"
	DatabaseMissing    Reason = "database_missing"
	NoConnectPrivilege Reason = "no_connect_privilege"
	NotAccepting       Reason = "not_accepting"
	TooManyConnections Reason = "too_many_connections"
	ConnectionRefused  Reason = "connection_refused"
	Timeout            Reason = "timeout"
	DNS                Reason = "dns"
	TLS                Reason = "tls"
	UnsupportedDriver  Reason = "unsupported_driver"
	Other              Reason = "other"
)

// Reasons lists every failure reason, to pre-create metric series.
func Reasons() []Reason {
	return []Reason{AuthFailed, DatabaseMissing, NoConnectPrivilege, NotAccepting, TooManyConnections,
		ConnectionRefused, Timeout, DNS, TLS, UnsupportedDriver, Other}
}

// Driver families.
const (
	DriverPostgres = "pgsql"
	DriverMySQL    = "mysql"
)

// NormalizeDriver maps Laravel's driver names onto a family, or "" when
// tenantdrift cannot probe that driver.
func NormalizeDriver(d string) string {
	switch strings.ToLower(strings.TrimSpace(d)) {
	case "pgsql", "postgres", "postgresql", "pg":
		return DriverPostgres
	case "mysql", "mariadb":
		return DriverMySQL
	}
	return ""
}

// Target is one tenant database and the credentials to reach it. Every
// field is data: none is ever parsed as a connection string.
type Target struct {
	Host     string
	Port     int
	Database string
	User     string
	Password string
	Driver   string // pgsql or mysql (after NormalizeDriver)
	SSLMode  string // disable, allow, prefer, require, verify-ca, verify-full
}

// Result is the outcome of one probe.
type Result struct {
	Reason   Reason
	SQLState string // the server's error code, when it sent one
	Detail   string // the server's or network's message, without credentials
	Duration time.Duration
}

// OK reports whether the database answered.
func (r Result) OK() bool { return r.Reason == OK }

// Prober probes targets with bounded concurrency.
type Prober struct {
	// Concurrency bounds simultaneous connections (default 16).
	Concurrency int
	// Timeout is each probe's deadline (default 5s).
	Timeout time.Duration
	mu      sync.Mutex
	bases   map[string]*pgconn.Config
}

// Run probes every target and returns results in the targets' order. One
// bad target never aborts or delays the others beyond its own deadline.
// When ctx ends, the remaining targets get Reason Timeout. progress, when
// not nil, is called after each probe with done and total.
func (p *Prober) Run(ctx context.Context, targets []Target, progress func(done, total int)) []Result {
	conc := p.Concurrency
	if conc <= 0 {
		conc = 16
	}
	results := make([]Result, len(targets))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for i := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			for j := i; j < len(targets); j++ {
				results[j] = Result{Reason: Timeout, Detail: "audit cancelled before this probe ran"}
			}
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = p.One(ctx, targets[i])
			if progress != nil {
				mu.Lock()
				done++
				progress(done, len(targets))
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	return results
}

// One probes a single target under the prober's deadline.
func (p *Prober) One(ctx context.Context, t Target) Result {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var res Result
	switch NormalizeDriver(t.Driver) {
	case DriverPostgres:
		res = p.postgres(ctx, t, timeout)
	case DriverMySQL:
		res = mysqlProbe(ctx, t, timeout)
	default:
		res = Result{Reason: UnsupportedDriver, Detail: fmt.Sprintf("driver %q is not probed (pgsql and mysql are)", t.Driver)}
	}
	res.Duration = time.Since(start)
	return res
}

// sslModes are the modes a target may ask for; anything else is refused
// rather than passed on.
var sslModes = map[string]bool{"disable": true, "allow": true, "prefer": true, "require": true, "verify-ca": true, "verify-full": true}

// base returns a parsed config for an sslmode, from a constant string that
// sets every setting an environment variable could otherwise supply, so
// PG* variables and ~/.pgpass never reach a tenant probe.
func (p *Prober) base(mode string) (*pgconn.Config, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.bases[mode]; ok {
		return c, nil
	}
	cfg, err := pgconn.ParseConfig("host=localhost port=5432 user=tenantdrift password=unused dbname=postgres " +
		"sslmode=" + mode + " sslcert='' sslkey='' sslrootcert='' sslpassword='' passfile='' " +
		"target_session_attrs=any connect_timeout=0")
	if err != nil {
		return nil, fmt.Errorf("build %s connection settings: %w", mode, err)
	}
	if p.bases == nil {
		p.bases = map[string]*pgconn.Config{}
	}
	p.bases[mode] = cfg
	return cfg, nil
}

// PostgresConfig builds the connection settings of a target field by
// field, ignoring PG* environment variables and ~/.pgpass.
func (p *Prober) PostgresConfig(t Target, timeout time.Duration) (*pgconn.Config, error) {
	return p.pgConfig(t, timeout)
}

// pgConfig builds the connection settings of a target field by field.
func (p *Prober) pgConfig(t Target, timeout time.Duration) (*pgconn.Config, error) {
	mode := t.SSLMode
	if mode == "" {
		mode = "prefer"
	}
	if !sslModes[mode] {
		return nil, fmt.Errorf("unknown sslmode %q", mode)
	}
	base, err := p.base(mode)
	if err != nil {
		return nil, err
	}
	cfg := base.Copy()
	port := t.Port
	if port == 0 {
		port = 5432
	}
	set := func(host *string, p *uint16, tc **tls.Config) {
		*host = t.Host
		*p = uint16(port)
		if *tc != nil {
			c := (*tc).Clone()
			c.ServerName = t.Host
			*tc = c
		}
	}
	set(&cfg.Host, &cfg.Port, &cfg.TLSConfig)
	for _, fb := range cfg.Fallbacks {
		set(&fb.Host, &fb.Port, &fb.TLSConfig)
	}
	cfg.Database = t.Database
	cfg.User = t.User
	cfg.Password = t.Password
	cfg.ConnectTimeout = timeout
	cfg.RuntimeParams = map[string]string{"application_name": "tenantdrift"}
	cfg.ValidateConnect = nil
	cfg.AfterConnect = nil
	return cfg, nil
}

func (p *Prober) postgres(ctx context.Context, t Target, timeout time.Duration) Result {
	if t.Host == "" {
		return Result{Reason: Other, Detail: "no host in the registry or the configuration"}
	}
	cfg, err := p.pgConfig(t, timeout)
	if err != nil {
		return Result{Reason: Other, Detail: err.Error()}
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return classifyPG(ctx, err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // the probe's answer is in; a failed goodbye changes nothing
	if _, err := conn.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		return classifyPG(ctx, err)
	}
	return Result{}
}

// classifyPG maps a connection error onto a Reason.
func classifyPG(ctx context.Context, err error) Result {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		r := Result{SQLState: pgErr.Code, Detail: pgErr.Message}
		switch pgErr.Code {
		case "28P01", "28000":
			r.Reason = AuthFailed
		case "3D000":
			r.Reason = DatabaseMissing
		case "42501":
			r.Reason = NoConnectPrivilege
		case "55000", "57P03":
			r.Reason = NotAccepting
		case "53300":
			r.Reason = TooManyConnections
		default:
			r.Reason = Other
		}
		return r
	}
	return classifyNet(ctx, err)
}

// classifyNet maps network and TLS failures, shared by both drivers.
func classifyNet(ctx context.Context, err error) Result {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || isTimeout(err):
		return Result{Reason: Timeout, Detail: "no answer before the deadline"}
	case errors.As(err, &dnsErr):
		return Result{Reason: DNS, Detail: "cannot resolve " + dnsErr.Name}
	case errors.Is(err, syscall.ECONNREFUSED):
		return Result{Reason: ConnectionRefused, Detail: "connection refused"}
	case errors.As(err, &certErr), errors.As(err, &recErr), strings.Contains(err.Error(), "tls:"), strings.Contains(err.Error(), "x509:"),
		strings.Contains(err.Error(), "server refused TLS connection"):
		return Result{Reason: TLS, Detail: lastLine(err)}
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return Result{Reason: Other, Detail: "the server closed the connection"}
	}
	return Result{Reason: Other, Detail: lastLine(err)}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// lastLine keeps the innermost cause of an error chain, which names the
// failure without pgx's preamble (that names user and database).
func lastLine(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	return err.Error()
}
