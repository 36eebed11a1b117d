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
	rows, err := c.Query.rows(ctx, env)
	if err != nil {
		return nil, err
	}
	var out []check.Finding
	for _, r := range rows {
		if !c.Credentials.read(r.password).plaintext {
			continue
		}
		f := r.finding()
		f.Reason = "not_encrypted"
		f.Message = fmt.Sprintf("The database password of tenant %s is stored in clear text, readable by anyone who can read tenant_databases; store it with encrypt().",
			name(r.slug, r.tenantID))
		out = append(out, f)
	}
	return out, nil
}
