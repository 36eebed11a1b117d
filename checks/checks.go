// Package checks holds tenantdrift's built-in check kinds, one file each.
//
// Every kind is one set-based SQL statement over the canonical registry
// relations of package tenant (registry_tenants, registry_tenants_all,
// registry_databases), never one query per tenant. Values reach SQL only as
// parameters; identifiers only through pgx.Identifier.
package checks

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
	"github.com/tenantdrift/tenantdrift/internal/probe"
)

// NeedsKey lists the checks that cannot work without an APP_KEY. Unless
// enabled explicitly (or asked for by name), Build leaves them out when no
// key is configured, rather than report every encrypted password as
// no_key.
var NeedsKey = []string{config.CheckCredentialUndecryptable, config.CheckDBUnreachable}

// Build returns the enabled check instances of cfg in report order. When
// only is non-empty, just those checks are built, enabled or not; an unknown
// name is an error, and so is an APP_KEY that does not fit the cipher.
func Build(cfg *config.Config, only []string) ([]check.Instance, error) {
	c := &cfg.Checks
	creds, err := credentials(cfg)
	if err != nil {
		return nil, err
	}
	prober := &probe.Prober{Concurrency: c.DBUnreachable.Concurrency, Timeout: c.DBUnreachable.ProbeTimeout.D()}
	query := credentialQuery{GracePeriod: cfg.Registry.GracePeriod.D(), Provisioning: c.ProvisioningStuck.Statuses}
	servers := make([]Server, len(c.DatabaseOrphan.Servers))
	for i, s := range c.DatabaseOrphan.Servers {
		db := s.Database
		if db == "" {
			db = "postgres"
		}
		user := s.Username
		servers[i] = Server{Target: probe.Target{Host: s.Host, Port: s.Port, Database: db, User: user, Password: s.Password.Reveal(),
			Driver: probe.DriverPostgres, SSLMode: s.SSLMode}}
	}
	kinds := map[string]check.Check{
		config.CheckRegistryMissing:         RegistryMissing{GracePeriod: cfg.Registry.GracePeriod.D()},
		config.CheckRegistryOrphan:          RegistryOrphan{},
		config.CheckRegistryDuplicate:       RegistryDuplicate{},
		config.CheckFieldMismatch:           FieldMismatch{Fields: c.FieldMismatch.Fields, GracePeriod: cfg.Registry.GracePeriod.D()},
		config.CheckProvisioningStuck:       ProvisioningStuck{Statuses: c.ProvisioningStuck.Statuses, Threshold: c.ProvisioningStuck.Threshold.D()},
		config.CheckCredentialUndecryptable: CredentialUndecryptable{Query: query, Credentials: creds},
		config.CheckCredentialPlaintext:     CredentialPlaintext{Query: query, Credentials: creds},
		config.CheckDBUnreachable: DBUnreachable{Query: query, Credentials: creds, Prober: prober, SSLMode: c.DBUnreachable.SSLMode,
			Host: cfg.Registry.Host, Port: cfg.Registry.Port, Driver: cfg.Registry.Driver},
		config.CheckDatabaseOrphan: DatabaseOrphan{Pattern: c.DatabaseOrphan.Pattern, Ignore: c.DatabaseOrphan.Ignore, Servers: servers,
			RegistryServers: c.DatabaseOrphan.RegistryServers == nil || *c.DatabaseOrphan.RegistryServers,
			Driver:          cfg.Registry.Driver, Prober: prober, Timeout: c.DBUnreachable.ProbeTimeout.D()},
	}
	want := map[string]bool{}
	for _, n := range only {
		if _, ok := kinds[n]; !ok {
			return nil, fmt.Errorf("unknown check %q (known: %v)", n, config.CheckNames())
		}
		want[n] = true
	}
	settings := c.ByName()
	var out []check.Instance
	for _, name := range config.CheckNames() {
		s := settings[name]
		if len(want) > 0 && !want[name] || len(want) == 0 && !s.IsEnabled() {
			continue
		}
		if len(want) == 0 && creds.Encrypter == nil && slices.Contains(NeedsKey, name) && !s.ExplicitlyEnabled() {
			continue
		}
		out = append(out, check.Instance{Name: name, Severity: s.Severity, Timeout: s.Timeout.D(), Check: kinds[name]})
	}
	return out, nil
}

// credentials builds the password reader from laravel.* (or APP_KEY and
// APP_PREVIOUS_KEYS). No key is not an error: the encrypter is nil.
func credentials(cfg *config.Config) (Credentials, error) {
	format, err := laravel.ParseFormat(cfg.Laravel.PasswordFormat)
	if err != nil {
		return Credentials{}, fmt.Errorf("laravel.password_format: %w", err)
	}
	creds := Credentials{Format: format, Encrypted: cfg.Registry.Preset != config.PresetStancl}
	if !cfg.Laravel.HasKey() {
		return creds, nil
	}
	cur, prev, err := laravel.KeysFromEnv(cfg.Laravel.AppKey.Reveal(), cfg.Laravel.PreviousKeys.Reveal())
	if err != nil {
		return Credentials{}, fmt.Errorf("laravel keys: %w", err)
	}
	enc, err := laravel.NewEncrypter(cfg.Laravel.Cipher, cur, prev...)
	if err != nil {
		return Credentials{}, fmt.Errorf("laravel keys: %w", err)
	}
	creds.Encrypter = enc
	return creds, nil
}

// collect runs a composed statement and scans every row with scan.
func collect(ctx context.Context, env check.Env, body string, args pgx.NamedArgs, scan func(pgx.Rows) (check.Finding, error)) ([]check.Finding, error) {
	sql, all := env.Registry.Query(body, args)
	rows, err := env.DB.Query(ctx, sql, all)
	if err != nil {
		return nil, fmt.Errorf("query landlord: %w", err)
	}
	defer rows.Close()
	var out []check.Finding
	for rows.Next() {
		f, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("read row: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query landlord: %w", err)
	}
	return out, nil
}

// cutoff is the newest creation time a row may have and still be judged.
func cutoff(now time.Time, age time.Duration) time.Time { return now.Add(-age) }

// name renders a tenant for a message: its slug, else its id.
func name(slug, id string) string {
	if slug != "" {
		return fmt.Sprintf("%q", slug)
	}
	if id != "" {
		return id
	}
	return "(no id)"
}

// orNull renders a possibly NULL value for a message.
func orNull(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Encrypter returns the Laravel encrypter laravel.* configures (nil without
// an APP_KEY) and the password format, for code that writes passwords.
func Encrypter(cfg *config.Config) (*laravel.Encrypter, laravel.Format, error) {
	c, err := credentials(cfg)
	return c.Encrypter, c.Format, err
}
