package repair

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
	"github.com/tenantdrift/tenantdrift/internal/probe"
	"github.com/tenantdrift/tenantdrift/internal/tenant"
)

// Planner turns findings into actions by reading the rows they are about.
type Planner struct {
	// DB is the landlord.
	DB tenant.Querier
	// Layout is the registry's physical tables (laravel preset).
	Layout *tenant.Layout
	Config config.Repair
	// Encrypter encrypts passwords; nil without an APP_KEY, in which case
	// the actions that write one are not repairable.
	Encrypter *laravel.Encrypter
	// Serialize writes passwords like encrypt() (PHP-serialized) rather
	// than encryptString().
	Serialize bool
	// Format is how stored passwords are read (laravel.password_format).
	Format laravel.Format
	// LandlordHost is the host a missing row gets when the action names
	// none.
	LandlordHost string
	// SSLMode is used to probe a database before its row is inserted.
	SSLMode string
	// ProvisioningStatuses and ProvisioningCutoff are provisioning_stuck's:
	// a row is set to a final status only while it is still in one of
	// these statuses and was created before the cutoff.
	ProvisioningStatuses []string
	ProvisioningCutoff   time.Time

	pwLimit *int // the password column's length limit, once read; 0 = none
}

// fits reports whether an encrypted password fits the password column, and
// if not, why: Laravel's own string() column, varchar(255), is too short
// for the payload of a password of 24 bytes or more (32 with
// encryptString()), and PostgreSQL refuses what MySQL would silently cut.
func (p *Planner) fits(ctx context.Context, column, encrypted string) (string, error) {
	if p.pwLimit == nil {
		var limit *int
		err := p.DB.QueryRow(ctx, `SELECT character_maximum_length FROM information_schema.columns
			WHERE table_schema = $1 AND table_name = $2 AND column_name = $3`,
			p.Layout.Databases[0], p.Layout.Databases[1], column).Scan(&limit)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("inspect %s.%s: %w", p.Layout.Databases.Sanitize(), column, err)
		}
		n := 0
		if limit != nil {
			n = *limit
		}
		p.pwLimit = &n
	}
	if *p.pwLimit > 0 && len(encrypted) > *p.pwLimit {
		return fmt.Sprintf("the encrypted password (%d characters) does not fit %s varchar(%d): widen the column to text", len(encrypted), column, *p.pwLimit), nil
	}
	return "", nil
}

// Unrepairable counts findings no action can repair, by check and why.
type Unrepairable map[string]map[string]int

func (u Unrepairable) add(checkName, why string) {
	if u[checkName] == nil {
		u[checkName] = map[string]int{}
	}
	u[checkName][why]++
}

// Total is the number of unrepairable findings.
func (u Unrepairable) Total() int {
	n := 0
	for _, m := range u {
		for _, c := range m {
			n += c
		}
	}
	return n
}

// Plan returns one action per finding an enabled action can repair, in
// the findings' order, and what it could not repair. Statuses are left to
// Decide. It fails only when the landlord cannot be read.
func (p *Planner) Plan(ctx context.Context, findings []check.Finding) ([]Action, Unrepairable, error) {
	var out []Action
	un := Unrepairable{}
	for _, f := range findings {
		name := actionFor(f.Check)
		if name == "" {
			un.add(f.Check, "needs a human")
			continue
		}
		if p.Config.ModeOf(f.Check) == config.ModeOff {
			un.add(f.Check, "action mode off")
			continue
		}
		var a Action
		var why string
		var err error
		switch name {
		case ActionInsertRow:
			a, why, err = p.insertRow(ctx, f)
		case ActionCopyField:
			a, why, err = p.copyField(ctx, f)
		case ActionEncryptPassword:
			a, why, err = p.encryptPassword(ctx, f)
		case ActionSetStatus:
			a, why, err = p.setStatus(ctx, f)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("plan %s for tenant %s: %w", name, f.TenantID, err)
			}
			// One odd row (a value that does not scan, a NULL key) never
			// holds back the others' repairs.
			un.add(f.Check, "cannot read the row: "+err.Error())
			continue
		}
		if why != "" {
			un.add(f.Check, why)
			continue
		}
		a.Action, a.Check, a.TenantID, a.TenantSlug, a.Fingerprint = name, f.Check, f.TenantID, f.TenantSlug, f.Fingerprint
		out = append(out, a)
	}
	return out, un, nil
}

// col returns a sanitized physical column.
func col(name string) string { return pgx.Identifier{name}.Sanitize() }

// column looks a canonical column up on one side.
func (p *Planner) tenantCol(canonical string) (string, bool) { return p.Layout.TenantColumn(canonical) }
func (p *Planner) dbCol(canonical string) (string, bool)     { return p.Layout.DatabaseColumn(canonical) }

func (p *Planner) insertRow(ctx context.Context, f check.Finding) (Action, string, error) {
	rm := p.Config.Actions.RegistryMissing
	if p.Encrypter == nil {
		return Action{}, "no APP_KEY to encrypt the password with", nil
	}
	if rm.Password == "" {
		return Action{}, "no password configured (repair.actions.registry_missing.password)", nil
	}
	tid, _ := p.tenantCol("id")
	tslug, hasSlug := p.tenantCol("slug")
	tdb, hasDB := p.tenantCol("database_name")
	if !hasDB {
		return Action{}, "the tenants table has no database_name column to name the row after", nil
	}
	slugExpr := "NULL::text"
	if hasSlug {
		slugExpr = "t." + col(tslug) + "::text"
	}
	var slug, db *string
	err := p.DB.QueryRow(ctx, "SELECT "+slugExpr+", t."+col(tdb)+"::text FROM "+p.Layout.Tenants.Sanitize()+
		" AS t WHERE t."+col(tid)+" = $1", f.TenantID).Scan(&slug, &db)
	if errors.Is(err, pgx.ErrNoRows) {
		return Action{}, "the tenant no longer exists", nil
	}
	if err != nil {
		return Action{}, "", err
	}
	if db == nil || *db == "" {
		return Action{}, "the tenant has no database_name", nil
	}
	if ddb, ok := p.dbCol("database_name"); ok {
		var taken bool
		if err := p.DB.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+p.Layout.Databases.Sanitize()+" AS d WHERE d."+col(ddb)+"::text = $1)", *db).Scan(&taken); err != nil {
			return Action{}, "", err
		}
		if taken {
			return Action{}, "another row already names this database: registry_duplicate needs a human", nil
		}
	}
	host := rm.Host
	if host == "" {
		host = p.LandlordHost
	}
	user := config.ExpandTenant(rm.Username, f.TenantID, deref(slug), *db)
	encrypted, err := p.Encrypter.Encrypt([]byte(rm.Password.Reveal()), p.Serialize)
	if err != nil {
		return Action{}, "", err
	}
	if pw, ok := p.dbCol("password"); ok {
		if why, err := p.fits(ctx, pw, encrypted); why != "" || err != nil {
			return Action{}, why, err
		}
	}

	// The columns written, canonical → value; a column the table lacks is
	// left out.
	values := []struct {
		canonical string
		value     any
		shown     string
	}{
		{"tenant_id", f.TenantID, f.TenantID},
		{"database_name", *db, *db},
		{"slug", deref(slug), deref(slug)},
		{"username", user, user},
		{"password", encrypted, Masked + " (encrypted)"},
		{"host", host, host},
		{"port", strconv.Itoa(rm.Port), strconv.Itoa(rm.Port)},
		{"driver", rm.Driver, rm.Driver},
		{"status", rm.Status, rm.Status},
	}
	// tenant_id and database_name come first: Apply looks for an existing
	// row by them.
	w := write{kind: writeInsert, table: p.Layout.Databases, exprs: map[int]string{}}
	var shown []string
	var cols []string
	var kv [][2]string
	for _, v := range values {
		c, ok := p.dbCol(v.canonical)
		if !ok {
			continue
		}
		w.insertCols = append(w.insertCols, c)
		w.insertVals = append(w.insertVals, v.value)
		cols = append(cols, c)
		shown = append(shown, c+"="+v.shown)
		kv = append(kv, [2]string{c, v.shown})
	}
	if c, ok := p.dbCol("tenant_id"); !ok || !slices.Contains(w.insertCols, c) {
		return Action{}, "the tenant databases table has no tenant_id column", nil
	}
	for _, ts := range []string{"created_at", "updated_at"} {
		if slices.Contains(p.Layout.DatabaseColumns, ts) {
			w.insertCols = append(w.insertCols, ts)
			w.insertVals = append(w.insertVals, nil)
			w.exprs[len(w.insertCols)-1] = "now()"
		}
	}
	w.tenantID = f.TenantID
	// Apply rechecks, under a lock, that the tenant still names this
	// database and is not deleted.
	w.guardTable, w.guardKeyCol, w.guardKeyVal, w.guardCol = p.Layout.Tenants, tid, f.TenantID, tdb
	w.guardValue = db
	if slices.Contains(p.Layout.TenantColumns, "deleted_at") {
		w.guardNotDeleted = "deleted_at"
	}
	w.probe = &probe.Target{Host: host, Port: rm.Port, Database: *db, User: user, Password: rm.Password.Reveal(),
		Driver: probe.NormalizeDriver(rm.Driver), SSLMode: p.SSLMode}
	if err := p.rowID(ctx, &w); err != nil {
		return Action{}, "", err
	}
	if err := p.columnTypes(ctx, &w); err != nil {
		return Action{}, "", err
	}
	return Action{
		Table: p.Layout.Databases.Sanitize(), Column: strings.Join(cols, ","),
		After: ptr(strings.Join(shown, ", ")), values: kv, write: w,
	}, "", nil
}

// columnTypes records the SQL type of every inserted column, so that each
// value, passed as text, is cast to it: a port or an id may be an integer
// in one schema and a string in another.
func (p *Planner) columnTypes(ctx context.Context, w *write) error {
	rows, err := p.DB.Query(ctx, `SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute AS a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`, p.Layout.Databases.Sanitize())
	if err != nil {
		return fmt.Errorf("inspect %s: %w", p.Layout.Databases.Sanitize(), err)
	}
	types, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([2]string, error) {
		var c [2]string
		err := row.Scan(&c[0], &c[1])
		return c, err
	})
	if err != nil {
		return fmt.Errorf("inspect %s: %w", p.Layout.Databases.Sanitize(), err)
	}
	w.insertTypes = make([]string, len(w.insertCols))
	for i, c := range w.insertCols {
		for _, t := range types {
			if t[0] == c {
				w.insertTypes[i] = t[1]
			}
		}
	}
	return nil
}

// rowID adds the new row's id to an insert when the id column has no
// default: Laravel's uuid keys are made by the application, so tenantdrift
// has PostgreSQL make one (gen_random_uuid(), built in since 13).
func (p *Planner) rowID(ctx context.Context, w *write) error {
	did, ok := p.dbCol("id")
	if !ok {
		return nil
	}
	var dataType string
	var def *string
	err := p.DB.QueryRow(ctx, `SELECT data_type::text, column_default::text FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 AND column_name = $3`,
		p.Layout.Databases[0], p.Layout.Databases[1], did).Scan(&dataType, &def)
	if err != nil {
		return fmt.Errorf("inspect %s.%s: %w", p.Layout.Databases.Sanitize(), did, err)
	}
	if def != nil {
		return nil
	}
	switch dataType {
	case "uuid", "character varying", "character", "text":
		w.insertCols = append(w.insertCols, did)
		w.insertVals = append(w.insertVals, nil)
		w.exprs[len(w.insertCols)-1] = "gen_random_uuid()"
	}
	return nil
}

func (p *Planner) copyField(ctx context.Context, f check.Finding) (Action, string, error) {
	src := p.Config.Actions.FieldMismatch.SourceOfTruth[f.Field]
	if src == "" {
		return Action{}, "no source of truth for " + f.Field, nil
	}
	tcol, ok1 := p.tenantCol(f.Field)
	dcol, ok2 := p.dbCol(f.Field)
	tid, _ := p.tenantCol("id")
	did, _ := p.dbCol("id")
	dtid, _ := p.dbCol("tenant_id")
	if !ok1 || !ok2 {
		return Action{}, "field " + f.Field + " is not a column of both tables", nil
	}
	var tval, dval, rowID *string
	var rows int
	err := p.DB.QueryRow(ctx, `SELECT t.`+col(tcol)+`::text,
		(SELECT count(*) FROM `+p.Layout.Databases.Sanitize()+` AS d WHERE d.`+col(dtid)+` = t.`+col(tid)+`),
		(SELECT d.`+col(did)+`::text FROM `+p.Layout.Databases.Sanitize()+` AS d WHERE d.`+col(dtid)+` = t.`+col(tid)+` LIMIT 1),
		(SELECT d.`+col(dcol)+`::text FROM `+p.Layout.Databases.Sanitize()+` AS d WHERE d.`+col(dtid)+` = t.`+col(tid)+` LIMIT 1)
		FROM `+p.Layout.Tenants.Sanitize()+` AS t WHERE t.`+col(tid)+` = $1`, f.TenantID).Scan(&tval, &rows, &rowID, &dval)
	if errors.Is(err, pgx.ErrNoRows) {
		return Action{}, "the tenant no longer exists", nil
	}
	if err != nil {
		return Action{}, "", err
	}
	if rows != 1 {
		return Action{}, fmt.Sprintf("the tenant has %d tenant_databases rows: registry_duplicate needs a human", rows), nil
	}
	if rowID == nil {
		return Action{}, "the tenant_databases row has no id", nil
	}
	// A slug or database name another row already holds would make two
	// tenants claim one: that is registry_duplicate's, and needs a human.
	value := tval
	if src == config.SourceDatabases {
		value = dval
	}
	if value != nil && (f.Field == "slug" || f.Field == "database_name") {
		var claims int
		err := p.DB.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+p.Layout.Tenants.Sanitize()+` AS t WHERE t.`+col(tcol)+`::text = $1 AND t.`+col(tid)+` <> $2)
			+ (SELECT count(*) FROM `+p.Layout.Databases.Sanitize()+` AS d WHERE d.`+col(dcol)+`::text = $1 AND d.`+col(dtid)+` <> $2)`,
			*value, f.TenantID).Scan(&claims)
		if err != nil {
			return Action{}, "", err
		}
		if claims > 0 {
			return Action{}, fmt.Sprintf("another tenant already holds this %s: registry_duplicate needs a human", f.Field), nil
		}
	}
	w := write{kind: writeUpdate, tenantID: f.TenantID}
	var a Action
	if src == config.SourceTenants {
		if tval == nil {
			return Action{}, "the source of truth (tenants." + f.Field + ") is NULL: nothing to copy", nil
		}
		w.table, w.keyCol, w.keyVal, w.col, w.before, w.after = p.Layout.Databases, did, *rowID, dcol, dval, tval
		w.guardTable, w.guardKeyCol, w.guardKeyVal, w.guardCol = p.Layout.Tenants, tid, f.TenantID, tcol
		a = Action{Table: p.Layout.Databases.Sanitize(), Column: dcol, Before: dval, After: tval}
	} else {
		if dval == nil {
			return Action{}, "the source of truth (tenant_databases." + f.Field + ") is NULL: nothing to copy", nil
		}
		w.table, w.keyCol, w.keyVal, w.col, w.before, w.after = p.Layout.Tenants, tid, f.TenantID, tcol, tval, dval
		w.guardTable, w.guardKeyCol, w.guardKeyVal, w.guardCol = p.Layout.Databases, did, *rowID, dcol
		a = Action{Table: p.Layout.Tenants.Sanitize(), Column: tcol, Before: tval, After: dval}
	}
	w.touchUpdatedAt = slices.Contains(columnsOf(p.Layout, w.table), "updated_at")
	if f.Field == "database_name" && src == config.SourceTenants {
		// Pointing the row at another database: it must exist and accept
		// the row's own credentials, like an inserted row's.
		target, why, err := p.rowTarget(ctx, *rowID, *tval)
		if why != "" || err != nil {
			return Action{}, why, err
		}
		w.probe = target
	}
	a.write = w
	return a, "", nil
}

// rowTarget returns the probe of the tenant database row rowID, pointed at
// database, with its stored password decrypted; or why it cannot be built.
func (p *Planner) rowTarget(ctx context.Context, rowID, database string) (*probe.Target, string, error) {
	expr := func(canonical, def string) string {
		if c, ok := p.dbCol(canonical); ok {
			return "d." + col(c) + "::text"
		}
		return def
	}
	did, _ := p.dbCol("id")
	var host, port, user, pw, driver *string
	err := p.DB.QueryRow(ctx, "SELECT "+expr("host", "NULL::text")+", "+expr("port", "NULL::text")+", "+expr("username", "NULL::text")+", "+
		expr("password", "NULL::text")+", "+expr("driver", "NULL::text")+" FROM "+p.Layout.Databases.Sanitize()+" AS d WHERE d."+col(did)+" = $1", rowID).
		Scan(&host, &port, &user, &pw, &driver)
	if err != nil {
		return nil, "", err
	}
	password := deref(pw)
	if laravel.AppearsEncrypted(password) {
		if p.Encrypter == nil {
			return nil, "no APP_KEY to read the row's password, so the new database cannot be checked", nil
		}
		plain, err := p.Encrypter.Decrypt(password, p.Format)
		if err != nil {
			return nil, "the row's password does not decrypt, so the new database cannot be checked", nil
		}
		password = string(plain)
	}
	portN, _ := strconv.Atoi(deref(port))
	if portN == 0 {
		portN = 5432
	}
	h := deref(host)
	if h == "" {
		h = p.LandlordHost
	}
	return &probe.Target{Host: h, Port: portN, Database: database, User: deref(user), Password: password,
		Driver: probe.NormalizeDriver(deref(driver)), SSLMode: p.SSLMode}, "", nil
}

func columnsOf(l *tenant.Layout, table pgx.Identifier) []string {
	if slices.Equal(table, l.Tenants) {
		return l.TenantColumns
	}
	return l.DatabaseColumns
}

func (p *Planner) encryptPassword(ctx context.Context, f check.Finding) (Action, string, error) {
	if p.Encrypter == nil {
		return Action{}, "no APP_KEY to encrypt the password with", nil
	}
	did, _ := p.dbCol("id")
	dpw, ok := p.dbCol("password")
	if !ok || f.Key == "" {
		return Action{}, "no password column", nil
	}
	var stored *string
	err := p.DB.QueryRow(ctx, "SELECT d."+col(dpw)+"::text FROM "+p.Layout.Databases.Sanitize()+" AS d WHERE d."+col(did)+" = $1", f.Key).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return Action{}, "the row no longer exists", nil
	}
	if err != nil {
		return Action{}, "", err
	}
	if stored == nil || *stored == "" || laravel.AppearsEncrypted(*stored) {
		return Action{}, "the password is no longer stored in clear text", nil
	}
	encrypted, err := p.Encrypter.Encrypt([]byte(*stored), p.Serialize)
	if err != nil {
		return Action{}, "", err
	}
	if why, err := p.fits(ctx, dpw, encrypted); why != "" || err != nil {
		return Action{}, why, err
	}
	format := laravel.FormatRaw
	if p.Serialize {
		format = laravel.FormatPHPSerialized
	}
	// The guard: the new value must decrypt to the old one before it is
	// written.
	if got, err := p.Encrypter.Decrypt(encrypted, format); err != nil || string(got) != *stored {
		return Action{}, "the encrypted password does not decrypt to the stored one", nil
	}
	w := write{kind: writeUpdate, tenantID: f.TenantID, table: p.Layout.Databases, keyCol: did, keyVal: f.Key,
		col: dpw, before: stored, after: &encrypted,
		touchUpdatedAt: slices.Contains(p.Layout.DatabaseColumns, "updated_at")}
	return Action{Table: p.Layout.Databases.Sanitize(), Column: dpw,
		Before: ptr(Masked + " (clear text)"), After: ptr(Masked + " (encrypted)"), write: w}, "", nil
}

func (p *Planner) setStatus(ctx context.Context, f check.Finding) (Action, string, error) {
	did, _ := p.dbCol("id")
	dst, ok := p.dbCol("status")
	if !ok || f.Key == "" {
		return Action{}, "no status column", nil
	}
	created := "NULL::timestamptz"
	if c, ok := p.dbCol("created_at"); ok {
		created = "d." + col(c)
	}
	var status *string
	var createdAt *time.Time
	err := p.DB.QueryRow(ctx, "SELECT d."+col(dst)+"::text, "+created+" FROM "+p.Layout.Databases.Sanitize()+
		" AS d WHERE d."+col(did)+" = $1", f.Key).Scan(&status, &createdAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Action{}, "the row no longer exists", nil
	}
	if err != nil {
		return Action{}, "", err
	}
	// Provisioning may have finished since the check ran: only a row still
	// in the status it saw, and still past the threshold, is given up on.
	if status == nil || *status != f.Actual || !slices.Contains(p.ProvisioningStatuses, *status) {
		return Action{}, "the row is no longer stuck in provisioning", nil
	}
	if createdAt != nil && !p.ProvisioningCutoff.IsZero() && !createdAt.Before(p.ProvisioningCutoff) {
		return Action{}, "the row is no longer past the provisioning threshold", nil
	}
	set := p.Config.Actions.ProvisioningStuck.SetStatus
	w := write{kind: writeUpdate, tenantID: f.TenantID, table: p.Layout.Databases, keyCol: did, keyVal: f.Key,
		col: dst, before: status, after: &set,
		touchUpdatedAt: slices.Contains(p.Layout.DatabaseColumns, "updated_at")}
	if c, ok := p.dbCol("created_at"); ok {
		w.casCol, w.casVal = c, createdAt
	}
	return Action{Table: p.Layout.Databases.Sanitize(), Column: dst, Before: status, After: &set, write: w}, "", nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
