package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/probe"
)

// DBUnreachable connects to every tenant database with its registry
// credentials and finds those that cannot answer SELECT 1. Rows whose
// password cannot be decrypted are left to credential_undecryptable.
type DBUnreachable struct {
	Query       credentialQuery
	Credentials Credentials
	Prober      *probe.Prober
	// SSLMode applies when a row's connection_config sets none.
	SSLMode string
	// Host, Port and Driver fill in rows that leave them empty; an empty
	// Host means the landlord's.
	Host   string
	Port   int
	Driver string
}

// Statement returns the SQL that lists what to probe.
func (c DBUnreachable) Statement(now time.Time) (string, pgx.NamedArgs) {
	return c.Query.Statement(now)
}

type probeRow struct {
	row    credentialRow
	target probe.Target
}

// Run implements check.Check. An unreachable database is a finding; only
// failing to list the rows, or running out of time, is an error.
func (c DBUnreachable) Run(ctx context.Context, env check.Env) ([]check.Finding, error) {
	// A broken base (a PGSERVICE that points nowhere, say) fails the
	// check once instead of every tenant.
	if _, err := c.Prober.PostgresConfig(probe.Target{Host: "localhost", SSLMode: c.SSLMode}, time.Second); err != nil {
		return nil, fmt.Errorf("prepare probes: %w", err)
	}
	var out []check.Finding
	var todo []probeRow
	err := c.Query.each(ctx, env, func(r credentialRow) {
		cred := c.Credentials.read(r.password)
		if cred.reason != "" {
			return
		}
		t, problem := c.target(r, cred.password, env)
		if problem != "" {
			f := r.finding()
			f.Reason = string(probe.Other)
			f.Actual = problem
			f.Message = fmt.Sprintf("The registry row of tenant %s cannot be used to connect: %s; correct the row.", name(r.slug, r.tenantID), problem)
			out = append(out, f)
			return
		}
		r.password, r.connectionConfig = nil, nil // the target holds what the probe needs
		todo = append(todo, probeRow{row: r, target: t})
	})
	if err != nil {
		return nil, err
	}
	targets := make([]probe.Target, len(todo))
	for i, p := range todo {
		targets[i] = p.target
	}
	var progress func(done, total int)
	if env.Progress != nil {
		progress = func(done, total int) { env.Progress("db_unreachable", done, total) }
	}
	results := c.Prober.Run(ctx, targets, progress)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("probe %d tenant databases: %w", len(targets), err)
	}
	for i, res := range results {
		if res.OK() {
			continue
		}
		p := todo[i]
		f := p.row.finding()
		f.Reason = string(res.Reason)
		f.Actual = res.Detail
		where := net.JoinHostPort(p.target.Host, strconv.Itoa(p.target.Port))
		code := ""
		if res.SQLState != "" {
			code = fmt.Sprintf(" (SQLSTATE %s)", res.SQLState)
			if probe.NormalizeDriver(p.target.Driver) == probe.DriverMySQL {
				code = fmt.Sprintf(" (MySQL error %s)", res.SQLState)
			}
		}
		f.Message = fmt.Sprintf("Tenant %s cannot use its database %s on %s with its registry credentials: %s: %s%s.",
			name(p.row.slug, p.row.tenantID), orNull(&p.target.Database), where, res.Reason, strings.TrimSuffix(res.Detail, "."), code)
		out = append(out, f)
	}
	return out, nil
}

// target builds the probe target of a row, or says why the row cannot be
// probed. No value is ever parsed as a connection string.
func (c DBUnreachable) target(r credentialRow, password string, env check.Env) (probe.Target, string) {
	t := probe.Target{Host: r.host, Database: r.database, User: r.user, Password: password, Driver: r.driver, SSLMode: c.SSLMode}
	if t.Driver == "" {
		t.Driver = c.Driver
	}
	family := probe.NormalizeDriver(t.Driver)
	if t.Host == "" {
		t.Host = c.Host
	}
	if t.Host == "" && env.Landlord != nil {
		t.Host = env.Landlord.Host
	}
	switch p := strings.TrimSpace(r.port); {
	case p != "":
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return t, fmt.Sprintf("port %q is not a TCP port", p)
		}
		t.Port = n
	case family == probe.DriverMySQL:
		t.Port = 3306
	case c.Port != 0:
		t.Port = c.Port
	default:
		t.Port = 5432
	}
	if mode, err := sslModeOf(r.connectionConfig); err != nil {
		return t, err.Error()
	} else if mode != "" {
		t.SSLMode = mode
	}
	return t, ""
}

// sslModeOf reads Laravel's sslmode key from a connection_config JSON.
func sslModeOf(cfg *string) (string, error) {
	if cfg == nil || strings.TrimSpace(*cfg) == "" || strings.TrimSpace(*cfg) == "null" {
		return "", nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(*cfg), &m); err != nil {
		return "", errors.New("connection_config is not a JSON object")
	}
	v, ok := m["sslmode"]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	switch s {
	case "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
		return s, nil
	}
	if !ok {
		return "", errors.New("connection_config.sslmode is not a string")
	}
	return "", fmt.Errorf("connection_config.sslmode %q is not a PostgreSQL sslmode", s)
}
