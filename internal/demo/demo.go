// Package demo builds a landlord database shaped like the Laravel platform
// tenantdrift grew out of, and fills it with a realistic registry in which
// every kind of drift that schema allows sits next to healthy tenants. The
// demo command and the benchmarks load it; tests use it as a fixture.
package demo

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
)

// Schema is the landlord schema exactly as the platform's Laravel
// migrations create it on PostgreSQL: uuid keys, varchar(255) strings,
// enums as varchar with a CHECK, timestamp(0) without time zone, soft
// deletes on tenants, unique slugs and database names, and the foreign key
// from tenant_databases to tenants.
const Schema = `
CREATE TABLE tenants (
    id uuid NOT NULL,
    name varchar(255) NOT NULL,
    email varchar(255) NOT NULL,
    slug varchar(255) NOT NULL,
    status varchar(255) CHECK (status IN ('pending', 'active', 'suspended', 'archived')) NOT NULL DEFAULT 'active',
    database_name varchar(255) NULL,
    branding json NULL,
    created_at timestamp(0) without time zone NULL,
    updated_at timestamp(0) without time zone NULL,
    deleted_at timestamp(0) without time zone NULL,
    PRIMARY KEY (id)
);
ALTER TABLE tenants ADD CONSTRAINT tenants_email_unique UNIQUE (email);
ALTER TABLE tenants ADD CONSTRAINT tenants_slug_unique UNIQUE (slug);

CREATE TABLE tenant_databases (
    id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    database_name varchar(255) NOT NULL,
    slug varchar(255) NOT NULL,
    database_username varchar(255) NOT NULL,
    database_password varchar(255) NOT NULL,
    host varchar(255) NOT NULL DEFAULT 'localhost',
    port integer NOT NULL DEFAULT 5432,
    database_driver varchar(255) NOT NULL DEFAULT 'pgsql',
    status varchar(255) CHECK (status IN ('provisioning', 'active', 'fallback', 'failed', 'archived')) NOT NULL DEFAULT 'provisioning',
    connection_config json NULL,
    created_at timestamp(0) without time zone NULL,
    updated_at timestamp(0) without time zone NULL,
    PRIMARY KEY (id)
);
ALTER TABLE tenant_databases ADD CONSTRAINT tenant_databases_tenant_id_foreign FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE tenant_databases ADD CONSTRAINT tenant_databases_database_name_unique UNIQUE (database_name);
ALTER TABLE tenant_databases ADD CONSTRAINT tenant_databases_slug_unique UNIQUE (slug);
`

// Drift is a kind of drift the demo plants.
type Drift int

// The kinds of drift the Laravel schema allows (an orphan row is not among
// them: the foreign key forbids it).
const (
	Healthy        Drift = iota
	MissingRow           // a tenant with no tenant_databases row: the incident
	ExtraRow             // a second tenant_databases row for one tenant
	SharedDBName         // tenants.database_name copied from another tenant
	SlugMismatch         // the tenant was renamed, its database row was not
	DBNameMismatch       // the database row points at a restored copy
	NullDBName           // tenants.database_name never filled in
	Stuck                // the database row is still "provisioning" hours later
	numDrifts
)

// Kinds lists the drift kinds Load plants.
func Kinds() []Drift {
	out := make([]Drift, 0, numDrifts-1)
	for d := MissingRow; d < numDrifts; d++ {
		out = append(out, d)
	}
	return out
}

// Options shape the registry.
type Options struct {
	// Tenants is the number of tenants (at least 20).
	Tenants int
	// DriftRatio is the share of tenants given each kind of drift; at
	// least one tenant gets each kind.
	DriftRatio float64
	// Extras adds the tenants every check must leave alone: one created a
	// minute ago with no database row yet, one soft-deleted without one.
	Extras bool
	// Now anchors every timestamp.
	Now time.Time
	// Seed makes the registry reproducible.
	Seed uint64
	// Host and Port are stored in tenant_databases.
	Host string
	Port int
	// Password returns the stored database_password for a tenant, usually
	// a Laravel encrypt() payload.
	Password func(slug string) (string, error)
}

// Summary says what Load planted.
type Summary struct {
	Tenants int
	Drifted map[Drift]int
}

type tenantRow struct {
	id, name, email, slug, status string
	dbName                        *string
	created                       time.Time
	deleted                       *time.Time
}

type dbRow struct {
	id, tenantID, dbName, slug, user, password, host, driver, status string
	port                                                             int32
	created                                                          time.Time
}

// Load creates the schema in the (empty) database conn is connected to and
// fills it in one transaction, using COPY.
func Load(ctx context.Context, conn *pgx.Conn, o Options) (Summary, error) {
	if o.Tenants < 20 {
		return Summary{}, fmt.Errorf("demo needs at least 20 tenants, got %d", o.Tenants)
	}
	if o.Password == nil {
		o.Password = func(string) (string, error) { return "", nil }
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = 5432
	}
	rng := mrand.New(mrand.NewPCG(o.Seed, o.Seed^0x5eed))
	tenants, dbs, sum, err := generate(rng, o)
	if err != nil {
		return Summary{}, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, Schema); err != nil {
		return Summary{}, fmt.Errorf("create schema: %w", err)
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"tenants"},
		[]string{"id", "name", "email", "slug", "status", "database_name", "created_at", "updated_at", "deleted_at"},
		pgx.CopyFromSlice(len(tenants), func(i int) ([]any, error) {
			t := tenants[i]
			return []any{t.id, t.name, t.email, t.slug, t.status, t.dbName, t.created, t.created, t.deleted}, nil
		}))
	if err != nil {
		return Summary{}, fmt.Errorf("load tenants: %w", err)
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"tenant_databases"},
		[]string{"id", "tenant_id", "database_name", "slug", "database_username", "database_password", "host", "port", "database_driver", "status", "created_at", "updated_at"},
		pgx.CopyFromSlice(len(dbs), func(i int) ([]any, error) {
			d := dbs[i]
			return []any{d.id, d.tenantID, d.dbName, d.slug, d.user, d.password, d.host, d.port, d.driver, d.status, d.created, d.created}, nil
		}))
	if err != nil {
		return Summary{}, fmt.Errorf("load tenant_databases: %w", err)
	}
	if _, err := tx.Exec(ctx, "ANALYZE tenants; ANALYZE tenant_databases"); err != nil {
		return Summary{}, fmt.Errorf("analyze: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Summary{}, fmt.Errorf("commit: %w", err)
	}
	return sum, nil
}

var (
	adjectives = []string{"Alpine", "Blue", "Bright", "Cedar", "Copper", "Crimson", "Golden", "Green", "Harbor", "Hidden",
		"Iron", "Juniper", "Lakeside", "Linden", "Maple", "Meadow", "Misty", "North", "Oak", "Old Town",
		"Pine", "Quiet", "Red Rock", "River", "Saffron", "Silver", "Stone", "Summit", "Sunny", "Willow"}
	nouns = []string{"Fox", "Lantern", "Anchor", "Falcon", "Garden", "Harvest", "Kettle", "Ledger", "Mill", "Orchard",
		"Otter", "Pepper", "Quill", "Raven", "Sparrow", "Thistle", "Tide", "Valley", "Wharf", "Wren"}
	trades = []string{"Bakery", "Dental", "Logistics", "Yoga Studio", "Bistro", "Books", "Clinic", "Coffee", "Consulting",
		"Florist", "Fitness", "Hardware", "Law Office", "Pharmacy", "Print Shop", "Realty", "Roofing", "Salon", "Tailors", "Vet"}
	// A few tenants the registry must carry unharmed: names that are not ASCII.
	unicodeNames = []string{"Café Zürich", "Ørsted Bryggeri", "Łódź Piekarnia", "Şişli Kırtasiye", "日本橋 Sushi"}
)

func slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

func dbNameFor(slug string) string {
	return "tenant_" + strings.ReplaceAll(slug, "-", "_")
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func generate(rng *mrand.Rand, o Options) ([]tenantRow, []dbRow, Summary, error) {
	perKind := max(1, int(float64(o.Tenants)*o.DriftRatio+0.5))
	kinds := Kinds()
	if perKind*len(kinds) > o.Tenants/2 {
		return nil, nil, Summary{}, fmt.Errorf("drift ratio %.3f leaves too few healthy tenants among %d", o.DriftRatio, o.Tenants)
	}
	// Assign drift to a shuffled set of tenants, never the first (so
	// SharedDBName always has an earlier tenant to copy from).
	drift := make([]Drift, o.Tenants)
	order := rng.Perm(o.Tenants - 1)
	sum := Summary{Tenants: o.Tenants, Drifted: map[Drift]int{}}
	for k, kind := range kinds {
		for j := range perKind {
			drift[order[k*perKind+j]+1] = kind
		}
		sum.Drifted[kind] = perKind
	}

	seen := map[string]int{}
	lastHealthy := 0 // index into tenants of the newest healthy tenant
	var tenants []tenantRow
	var dbs []dbRow
	str := func(s string) *string { return &s }
	for i := range o.Tenants {
		var name string
		if i%97 == 13 {
			name = unicodeNames[(i/97)%len(unicodeNames)]
		} else {
			name = fmt.Sprintf("%s %s %s", adjectives[rng.IntN(len(adjectives))], nouns[rng.IntN(len(nouns))], trades[rng.IntN(len(trades))])
		}
		slug := slugify(name)
		if n := seen[slug]; n > 0 {
			seen[slug] = n + 1
			slug = fmt.Sprintf("%s-%d", slug, n+1)
			name = fmt.Sprintf("%s %d", name, n+1)
		} else {
			seen[slug] = 1
		}
		created := o.Now.Add(-time.Duration(2+rng.IntN(700*24)) * time.Hour).UTC().Truncate(time.Second)
		db := dbNameFor(slug)
		t := tenantRow{id: newUUID(), name: name, email: "admin@" + strings.ReplaceAll(slug, "'", "") + ".example", slug: slug,
			status: "active", dbName: str(db), created: created}
		pw, err := o.Password(slug)
		if err != nil {
			return nil, nil, Summary{}, fmt.Errorf("password for %s: %w", slug, err)
		}
		d := dbRow{id: newUUID(), tenantID: t.id, dbName: db, slug: slug, user: db + "_user", password: pw,
			host: o.Host, port: int32(o.Port), driver: "pgsql", status: "active", created: created.Add(time.Second)}
		switch drift[i] {
		case MissingRow:
			tenants = append(tenants, t)
			continue
		case ExtraRow:
			old := d
			old.id, old.dbName, old.slug, old.status = newUUID(), db+"_v1", slug+"-v1", "fallback"
			old.created = created
			dbs = append(dbs, old)
		case SharedDBName:
			// A copy-paste from the tenant provisioned just before.
			t.dbName = tenants[lastHealthy].dbName
		case SlugMismatch:
			t.slug = slug + "-gmbh"
			t.name += " GmbH"
		case DBNameMismatch:
			d.dbName = db + "_restored"
		case NullDBName:
			t.dbName = nil
		case Stuck:
			t.created = o.Now.Add(-3 * time.Hour).UTC().Truncate(time.Second)
			d.created, d.status = t.created.Add(time.Second), "provisioning"
		}
		if drift[i] == Healthy {
			lastHealthy = len(tenants)
		}
		tenants = append(tenants, t)
		dbs = append(dbs, d)
	}
	if o.Extras {
		young := tenantRow{id: newUUID(), name: "Fresh Start Pilates", email: "admin@fresh-start-pilates.example", slug: "fresh-start-pilates",
			status: "active", dbName: str("tenant_fresh_start_pilates"), created: o.Now.Add(-time.Minute).UTC().Truncate(time.Second)}
		gone := tenantRow{id: newUUID(), name: "Closed Shop Ltd", email: "admin@closed-shop.example", slug: "closed-shop",
			status: "archived", dbName: str("tenant_closed_shop"), created: o.Now.Add(-400 * 24 * time.Hour).UTC().Truncate(time.Second)}
		deleted := o.Now.Add(-30 * 24 * time.Hour).UTC().Truncate(time.Second)
		gone.deleted = &deleted
		tenants = append(tenants, young, gone)
	}
	return tenants, dbs, sum, nil
}
