package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
)

// CredentialUndecryptable finds a stored password that looks like a
// Laravel payload but does not decrypt with the configured keys. Its
// reason is mac_invalid (a wrong APP_KEY, or a previous key missing after a
// rotation), payload_invalid or no_key.
type CredentialUndecryptable struct {
	Query       credentialQuery
	Credentials Credentials
}

// Statement returns the check's SQL and arguments.
func (c CredentialUndecryptable) Statement(now time.Time) (string, pgx.NamedArgs) {
	return c.Query.Statement(now)
}

// Run implements check.Check.
func (c CredentialUndecryptable) Run(ctx context.Context, env check.Env) ([]check.Finding, error) {
	var out []check.Finding
	err := c.Query.each(ctx, env, func(r credentialRow) {
		cred := c.Credentials.read(r.password)
		if cred.reason == "" {
			return
		}
		f := r.finding()
		f.Reason = string(cred.reason)
		f.Message = fmt.Sprintf("The database password of tenant %s cannot be decrypted (%s): %s; the application cannot connect to its database either.",
			name(r.slug, r.tenantID), cred.reason, undecryptableHint(cred.reason))
		out = append(out, f)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func undecryptableHint(r laravel.Reason) string {
	switch r {
	case laravel.ReasonMACInvalid:
		return "it was encrypted under another APP_KEY; add the old key to APP_PREVIOUS_KEYS or re-encrypt the password"
	case laravel.ReasonNoKey:
		return "no APP_KEY is configured for tenantdrift; set laravel.app_key or APP_KEY"
	}
	return "the stored value is a damaged payload; re-encrypt the password"
}
