package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/probe"
)

// claimedSQL lists every database name the registry claims, soft-deleted
// tenants included (their databases are kept on purpose), and the servers
// the registry points at.
const claimedSQL = `
SELECT 'db', database_name, NULL, NULL FROM registry_tenants_all WHERE coalesce(database_name, '') <> ''
UNION
SELECT 'db', database_name, NULL, NULL FROM registry_databases WHERE coalesce(database_name, '') <> ''
UNION
SELECT 'server', NULL, coalesce(host, ''), coalesce(port, '') FROM registry_databases
 WHERE lower(coalesce(driver, @default_driver::text)) IN ('pgsql', 'postgres', 'postgresql')`

// listSQL lists a server's databases that look like tenant databases.
const listSQL = `SELECT datname FROM pg_database
WHERE NOT datistemplate AND datname <> 'postgres' AND datname LIKE $1 AND NOT (datname = ANY ($2::text[]))
ORDER BY datname`

// Server is a PostgreSQL server to inventory, with its own credentials.
type Server struct {
	probe.Target
}

// DatabaseOrphan finds a database on an inventoried server that matches the
// tenant naming pattern and that no registry row claims, such as the
// leftover database a failed provisioning run left "already existing".
type DatabaseOrphan struct {
	Pattern string
	Ignore  []string
	// Servers are inventoried besides the landlord's own server.
	Servers []Server
	// RegistryServers also inventories every host:port the registry
	// names, with the landlord's credentials.
	RegistryServers bool
	Driver          string
	Prober          *probe.Prober
	Timeout         time.Duration
}

// Statement returns the landlord-side SQL.
func (c DatabaseOrphan) Statement(time.Time) (string, pgx.NamedArgs) {
	return claimedSQL, pgx.NamedArgs{"default_driver": c.Driver}
}

// Run implements check.Check. The landlord's server or a configured server
// that cannot be listed makes the run an error naming it: the inventory
// would be incomplete. A server known only from the registry, reached
// with the landlord's credentials, is best effort: a failure is logged.
func (c DatabaseOrphan) Run(ctx context.Context, env check.Env) ([]check.Finding, error) {
	if env.Landlord == nil {
		return nil, errors.New("the landlord's connection settings are unknown")
	}
	body, args := c.Statement(env.Now)
	sql, all := env.Registry.Query(body, args)
	rows, err := env.DB.Query(ctx, sql, all)
	if err != nil {
		return nil, fmt.Errorf("query landlord: %w", err)
	}
	claimed := map[string]bool{}
	var registryServers [][2]string
	for rows.Next() {
		var kind string
		var db, host, port *string
		if err := rows.Scan(&kind, &db, &host, &port); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read row: %w", err)
		}
		if kind == "db" {
			claimed[deref(db)] = true
		} else {
			registryServers = append(registryServers, [2]string{deref(host), deref(port)})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query landlord: %w", err)
	}

	servers := c.inventory(env.Landlord, registryServers)
	ignore := append([]string{env.Landlord.Database}, c.Ignore...)
	var out []check.Finding
	var failed []string
	for _, s := range servers {
		addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(int(s.cfg.Port)))
		names, err := list(ctx, s.cfg, c.Pattern, ignore)
		if err != nil && s.implicit {
			env.Log().Warn("cannot inventory a server the registry names; configure it under checks.database_orphan.servers",
				"check", "database_orphan", "server", addr, "err", err)
			continue
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s (%s)", addr, err))
			continue
		}
		for _, n := range names {
			if claimed[n] {
				continue
			}
			out = append(out, check.Finding{
				DatabaseName: n, Reason: "unclaimed", Actual: addr, Key: addr,
				Message: fmt.Sprintf("Database %q on %s looks like a tenant database but no registry row claims it: a leftover of failed provisioning or of a deleted tenant; check its owner, then archive or drop it.", n, addr),
			})
		}
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("cannot list databases on %s; give the server credentials under checks.database_orphan.servers or set registry_servers: false", strings.Join(failed, ", "))
	}
	return out, nil
}

type server struct {
	cfg *pgconn.Config
	// implicit servers come from the registry, with borrowed credentials:
	// failing to list one is logged, not an error.
	implicit bool
}

// inventory is the landlord's server, the configured servers and (if asked)
// the registry's servers, each once.
func (c DatabaseOrphan) inventory(landlord *pgconn.Config, registry [][2]string) []server {
	seen := map[string]bool{}
	var out []server
	add := func(cfg *pgconn.Config, implicit bool) {
		key := strings.ToLower(cfg.Host) + ":" + strconv.Itoa(int(cfg.Port))
		if !seen[key] {
			seen[key] = true
			out = append(out, server{cfg: cfg, implicit: implicit})
		}
	}
	base := landlord.Copy()
	base.ConnectTimeout = c.Timeout
	add(base, false)
	for _, s := range c.Servers {
		if cfg, err := c.Prober.PostgresConfig(s.Target, c.Timeout); err == nil {
			add(cfg, false)
		}
	}
	if c.RegistryServers {
		for _, hp := range registry {
			host, port := hp[0], 5432
			if host == "" {
				host = landlord.Host
			}
			if n, err := strconv.Atoi(hp[1]); err == nil && n > 0 && n < 65536 {
				port = n
			}
			cfg, err := c.Prober.PostgresConfig(probe.Target{Host: host, Port: port, Database: landlord.Database,
				User: landlord.User, Password: landlord.Password, Driver: probe.DriverPostgres, SSLMode: "prefer"}, c.Timeout)
			if err == nil {
				add(cfg, true)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b server) int { return strings.Compare(a.cfg.Host, b.cfg.Host) })
	return out
}

// list returns the databases on one server matching pattern.
func list(ctx context.Context, cfg *pgconn.Config, pattern string, ignore []string) ([]string, error) {
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, describeConnErr(err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // read-only session; nothing to report on close
	ign := "{" + quoteArray(ignore) + "}"
	res := conn.ExecParams(ctx, listSQL, [][]byte{[]byte(pattern), []byte(ign)}, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, describeConnErr(res.Err)
	}
	names := make([]string, 0, len(res.Rows))
	for _, r := range res.Rows {
		names = append(names, string(r[0]))
	}
	return names, nil
}

// quoteArray renders text values as the elements of a PostgreSQL array
// literal, sent as a parameter (never spliced into SQL).
func quoteArray(vals []string) string {
	q := make([]string, len(vals))
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	for i, v := range vals {
		q[i] = `"` + r.Replace(v) + `"`
	}
	return strings.Join(q, ",")
}

func describeConnErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u
	}
	return err
}
