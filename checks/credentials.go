package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
)

// credentialRowsSQL lists the tenant database rows of active tenants older
// than the grace period, with what it takes to connect. Rows still being
// provisioned are left to provisioning_stuck.
const credentialRowsSQL = `
SELECT d.id, d.tenant_id, coalesce(t.slug, d.slug) AS slug, d.database_name, d.host, d.port,
       d.username, d.password, d.driver, d.connection_config
FROM registry_databases AS d
JOIN registry_tenants AS t ON t.id = d.tenant_id
WHERE (t.created_at IS NULL OR t.created_at < @cutoff::timestamptz)
  AND NOT (coalesce(d.status, '') = ANY (@provisioning::text[]))`

// credentialRow is one tenant database row with its stored password.
type credentialRow struct {
	id, tenantID, slug, database string
	host, port, user, driver     string
	password                     *string
	connectionConfig             *string
}

func (r credentialRow) finding() check.Finding {
	return check.Finding{TenantID: r.tenantID, TenantSlug: r.slug, DatabaseName: r.database, Key: r.id}
}

// credentialQuery selects the rows the credential checks look at.
type credentialQuery struct {
	GracePeriod  time.Duration
	Provisioning []string
}

// Statement returns the SQL and arguments.
func (q credentialQuery) Statement(now time.Time) (string, pgx.NamedArgs) {
	return credentialRowsSQL, pgx.NamedArgs{"cutoff": cutoff(now, q.GracePeriod), "provisioning": nonNil(q.Provisioning)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// each runs the query and streams the rows to fn one at a time, so a check
// that keeps only what it finds holds one row in memory, not the whole
// registry (measured: collecting 100,000 rows first cost ~100 MiB of peak
// RSS). The passwords it reads stay in memory, never in a finding, a log or
// an error.
func (q credentialQuery) each(ctx context.Context, env check.Env, fn func(credentialRow)) error {
	body, args := q.Statement(env.Now)
	sql, all := env.Registry.Query(body, args)
	rows, err := env.DB.Query(ctx, sql, all)
	if err != nil {
		return fmt.Errorf("query landlord: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r credentialRow
		var tenantID, slug, db, host, port, user, driver *string
		if err := rows.Scan(&r.id, &tenantID, &slug, &db, &host, &port, &user, &r.password, &driver, &r.connectionConfig); err != nil {
			return fmt.Errorf("read row: %w", err)
		}
		r.tenantID, r.slug, r.database = deref(tenantID), deref(slug), deref(db)
		r.host, r.port, r.user, r.driver = deref(host), deref(port), deref(user), deref(driver)
		fn(r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query landlord: %w", err)
	}
	return nil
}

// Credentials reads stored passwords the way the Laravel application does.
type Credentials struct {
	// Encrypter decrypts; nil when no APP_KEY is configured.
	Encrypter *laravel.Encrypter
	Format    laravel.Format
	// Encrypted says the layout stores passwords with encrypt(); when false
	// (stancl stores them as given) every value is used as it is.
	Encrypted bool
}

// credential is what a stored password turned out to be.
type credential struct {
	password  string         // usable to connect
	plaintext bool           // stored in clear text where encryption was expected
	reason    laravel.Reason // why it cannot be decrypted; "" when it can
}

// read classifies one stored password like Laravel's appearsEncrypted():
// something that does not look like a payload is plaintext and is used as
// the password; a payload that does not decrypt is undecryptable.
func (c Credentials) read(stored *string) credential {
	if stored == nil || *stored == "" {
		return credential{}
	}
	if !c.Encrypted {
		return credential{password: *stored}
	}
	if !laravel.AppearsEncrypted(*stored) {
		return credential{password: *stored, plaintext: true}
	}
	if c.Encrypter == nil {
		return credential{reason: laravel.ReasonNoKey}
	}
	b, err := c.Encrypter.Decrypt(*stored, c.Format)
	if err != nil {
		r := laravel.ReasonOf(err)
		if r == "" {
			r = laravel.ReasonPayloadInvalid
		}
		return credential{reason: r}
	}
	return credential{password: string(b)}
}

// CredentialsFor returns how the credential checks read stored passwords
// under cfg: with an Encrypter when an APP_KEY is configured. It fails
// when laravel.password_format or the keys are invalid.
func CredentialsFor(cfg *config.Config) (Credentials, error) { return credentials(cfg) }

// Usable says what stored, a value of the password column, is to the
// checks without returning the password: reason is "" when it can be used
// (it decrypts, or is used as stored), else why not (laravel.ReasonNoKey,
// ReasonMACInvalid, …); plaintext is true when it is stored in clear where
// encryption was expected.
func (c Credentials) Usable(stored string) (reason laravel.Reason, plaintext bool) {
	cr := c.read(&stored)
	return cr.reason, cr.plaintext
}
