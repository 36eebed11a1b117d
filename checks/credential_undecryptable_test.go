package checks_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/config"
)

func TestCredentialUndecryptable(t *testing.T) {
	t.Parallel()
	l := newLandlord(t)
	l.row(1, "good", "db", 5432, "tenant_good", "u", encrypt(t, testAppKey, "pw-good"), "pgsql", nil)
	l.row(2, "rotated", "db", 5432, "tenant_rotated", "u", encrypt(t, testRetiredKey, "pw-rotated"), "pgsql", nil)
	l.row(3, "plain", "db", 5432, "tenant_plain", "u", "plain-password", "pgsql", nil)
	// Looks like a payload (base64 JSON with iv, value, mac) but is damaged.
	l.row(4, "damaged", "db", 5432, "tenant_damaged", "u", "eyJpdiI6IkFBQUEiLCJ2YWx1ZSI6IkJCQkIiLCJtYWMiOiJjYyJ9", "pgsql", nil)

	fs := l.mustRun(keyed(), config.CheckCredentialUndecryptable)
	got := map[string]string{}
	for _, f := range fs {
		got[f.TenantSlug] = f.Reason
		assert.Equal(t, "critical", f.Severity)
		assert.NotContains(t, f.Message, "pw-")
	}
	assert.Equal(t, map[string]string{"rotated": "mac_invalid", "damaged": "payload_invalid"}, got)

	// With the retired key among APP_PREVIOUS_KEYS, the rotated one decrypts.
	cfg := keyed()
	cfg.Laravel.PreviousKeys = testRetiredKey
	fs = l.mustRun(cfg, config.CheckCredentialUndecryptable)
	require.Len(t, fs, 1)
	assert.Equal(t, "damaged", fs[0].TenantSlug)

	// Without any key, explicitly enabled, every payload is no_key.
	fs = l.mustRun(config.Default(), config.CheckCredentialUndecryptable)
	got = map[string]string{}
	for _, f := range fs {
		got[f.TenantSlug] = f.Reason
	}
	assert.Equal(t, map[string]string{"good": "no_key", "rotated": "no_key", "damaged": "no_key"}, got)
}

func TestCredentialKeysMustFitCipher(t *testing.T) {
	cfg := config.Default()
	cfg.Laravel.AppKey = "base64:c2hvcnQ=" // 5 bytes
	_, err := buildErr(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "current key is 5 bytes, aes-256-cbc needs 32")
	assert.NotContains(t, err.Error(), "c2hvcnQ")
}
