package checks_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/checks"
	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
)

func buildErr(cfg *config.Config) ([]check.Instance, error) { return checks.Build(cfg, nil) }

func TestCredentialPlaintext(t *testing.T) {
	t.Parallel()
	l := newLandlord(t)
	l.row(1, "good", "db", 5432, "tenant_good", "u", encrypt(t, testAppKey, "pw"), "pgsql", nil)
	l.row(2, "for-now", "db", 5432, "tenant_for_now", "u", "Plain-For-Now-1?", "pgsql", nil)
	// A JSON that is not a payload is plaintext too (appearsEncrypted is false).
	l.row(3, "json", "db", 5432, "tenant_json", "u", "eyJmb28iOiJiYXIifQ==", "pgsql", nil)
	// An empty password is not plaintext drift.
	l.row(4, "empty", "db", 5432, "tenant_empty", "u", "", "pgsql", nil)

	for _, cfg := range []*config.Config{keyed(), config.Default()} { // needs no key
		fs := l.mustRun(cfg, config.CheckCredentialPlaintext)
		var slugs []string
		for _, f := range fs {
			slugs = append(slugs, f.TenantSlug)
			assert.Equal(t, "warning", f.Severity)
			assert.NotContains(t, f.Message, "Plain-For-Now")
			assert.NotContains(t, f.Expected+f.Actual, "Plain-For-Now")
		}
		check.Sort(fs, nil)
		assert.ElementsMatch(t, []string{"for-now", "json"}, slugs)
	}

	// stancl stores passwords as given: nothing to report there.
	cfg := keyed()
	cfg.Registry.Preset = config.PresetStancl
	insts, err := checks.Build(cfg, []string{config.CheckCredentialPlaintext})
	require.NoError(t, err)
	require.Len(t, insts, 1)
}
