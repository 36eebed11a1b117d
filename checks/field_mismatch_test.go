package checks_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
)

func TestFieldMismatch(t *testing.T) {
	t.Parallel()
	l := newLandlord(t)
	l.tenant(uuid(1), "same", "tenant_same", old)
	l.database(uuid(101), uuid(1), "same", "tenant_same", "active", old)
	// Renamed tenant: slug differs.
	l.tenant(uuid(2), "acme-gmbh", "tenant_acme", old)
	l.database(uuid(102), uuid(2), "acme", "tenant_acme", "active", old)
	// Restored database: database_name differs, and so does the slug.
	l.tenant(uuid(3), "bravo", "tenant_bravo", old)
	l.database(uuid(103), uuid(3), "bravo-x", "tenant_bravo_restored", "active", old)
	// NULL against a value is a mismatch.
	l.tenant(uuid(4), "nulled", nil, old)
	l.database(uuid(104), uuid(4), "nulled", "tenant_nulled", "active", old)
	// Young tenants are spared.
	l.tenant(uuid(5), "young", "tenant_young", time.Minute)
	l.database(uuid(105), uuid(5), "young-x", "tenant_young", "active", time.Minute)
	// A tenant with two rows, one of which agrees, is not a mismatch.
	l.tenant(uuid(6), "dup", "tenant_dup", old)
	l.database(uuid(106), uuid(6), "dup", "tenant_dup", "active", old)
	l.database(uuid(107), uuid(6), "dup-v1", "tenant_dup_v1", "fallback", old)

	fs := l.mustRun(config.Default(), config.CheckFieldMismatch)
	check.Sort(fs, nil)
	type row struct{ slug, field, expected, actual string }
	var got []row
	for _, f := range fs {
		got = append(got, row{f.TenantSlug, f.Field, f.Expected, f.Actual})
		assert.Equal(t, "warning", f.Severity)
		assert.NotEmpty(t, f.Message)
	}
	assert.Equal(t, []row{
		{"acme-gmbh", "slug", "acme-gmbh", "acme"},
		{"bravo", "database_name", "tenant_bravo", "tenant_bravo_restored"},
		{"bravo", "slug", "bravo", "bravo-x"},
		{"nulled", "database_name", "", "tenant_nulled"},
	}, got)
	for _, f := range fs {
		if f.TenantSlug == "nulled" {
			assert.Contains(t, f.Message, "NULL")
		}
	}

	// Only the configured fields are compared.
	cfg := config.Default()
	cfg.Checks.FieldMismatch.Fields = []string{"database_name"}
	fs = l.mustRun(cfg, config.CheckFieldMismatch)
	require.Len(t, fs, 2)
	for _, f := range fs {
		assert.Equal(t, "database_name", f.Field)
	}
}

func TestFieldMismatchExtraColumn(t *testing.T) {
	t.Parallel()
	l := newLandlord(t)
	// A column both tables have can be compared too.
	l.exec(`ALTER TABLE tenants ADD COLUMN region varchar(32); ALTER TABLE tenant_databases ADD COLUMN region varchar(32)`)
	l.tenant(uuid(1), "eu", "tenant_eu", old)
	l.database(uuid(101), uuid(1), "eu", "tenant_eu", "active", old)
	l.exec(`UPDATE tenants SET region = 'eu-central' WHERE id = $1`, uuid(1))
	l.exec(`UPDATE tenant_databases SET region = 'us-east' WHERE tenant_id = $1`, uuid(1))
	cfg := config.Default()
	cfg.Checks.FieldMismatch.Fields = []string{"slug", "region"}
	fs := l.mustRun(cfg, config.CheckFieldMismatch)
	require.Len(t, fs, 1)
	assert.Equal(t, "region", fs[0].Field)
	assert.Equal(t, "eu-central", fs[0].Expected)
	assert.Equal(t, "us-east", fs[0].Actual)
}
