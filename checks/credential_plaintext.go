package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/internal/check"
)

// CredentialPlaintext finds a database password stored in clear text where
// the layout expects Laravel's encrypt() payload. The finding never carries
// the password.
type CredentialPlaintext struct {
	Query       credentialQuery
	Credentials Credentials
}

// Statement returns the check's SQL and arguments.
func (c CredentialPlaintext) Statement(now time.Time) (string, pgx.NamedArgs) {
	return c.Query.Statement(now)
}

// Run implements check.Check.
func (c CredentialPlaintext) Run(ctx context.Context, env check.Env) ([]check.Finding, error) {
	var out []check.Finding
	err := c.Query.each(ctx, env, func(r credentialRow) {
		if !c.Credentials.read(r.password).plaintext {
			return
		}
		f := r.finding()
		f.Reason = "not_encrypted"
		f.Message = fmt.Sprintf("The database password of tenant %s is stored in clear text, readable by anyone who can read tenant_databases; store it with encrypt().",
			name(r.slug, r.tenantID))
		out = append(out, f)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
