package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Credentials says how the demo reads and writes stored passwords.
type Credentials struct {
	Decrypt func(payload string) (string, error)
	Encrypt func(plaintext string) (string, error)
	// EncryptRetired encrypts under a key the auditor does not have: the
	// APP_KEY before a rotation that forgot APP_PREVIOUS_KEYS.
	EncryptRetired func(plaintext string) (string, error)
}

// Broken lists what ProvisionDatabases broke, by drift, tenant slug.
type Broken map[string]string

// LeftoverDatabase is the database no registry row claims.
const LeftoverDatabase = "tenant_trial_leftover"

// ProvisionDatabases creates the tenant databases and their login roles on
// the server admin is connected to, as the registry in landlord describes
// them, then breaks a few the way production breaks them: a password that
// no longer matches, a dropped database, a revoked CONNECT, a password left
// in clear text, one encrypted under a retired APP_KEY, and a leftover
// database nobody claims. It is for the demo's own throwaway cluster.
func ProvisionDatabases(ctx context.Context, landlord, admin *pgx.Conn, c Credentials) (Broken, error) {
	rows, err := landlord.Query(ctx, `SELECT DISTINCT ON (database_name) database_name, database_username, database_password
		FROM tenant_databases WHERE status <> 'provisioning' ORDER BY database_name`)
	if err != nil {
		return nil, fmt.Errorf("list tenant databases: %w", err)
	}
	type dbRow struct{ name, user, password string }
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (dbRow, error) {
		var d dbRow
		err := r.Scan(&d.name, &d.user, &d.password)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tenant databases: %w", err)
	}
	for _, d := range list {
		pw, err := c.Decrypt(d.password)
		if err != nil {
			return nil, fmt.Errorf("decrypt the password of %s: %w", d.name, err)
		}
		if err := createRole(ctx, admin, d.user, pw); err != nil {
			return nil, err
		}
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{d.name}.Sanitize()); err != nil {
			return nil, fmt.Errorf("create database %s: %w", d.name, err)
		}
	}

	// Healthy tenants to break: one row, fields in agreement.
	rows, err = landlord.Query(ctx, `SELECT t.slug, d.id, d.database_name, d.database_password
		FROM tenants t JOIN tenant_databases d ON d.tenant_id = t.id
		WHERE d.status = 'active' AND t.deleted_at IS NULL AND d.slug = t.slug AND d.database_name = t.database_name
		  AND (SELECT count(*) FROM tenant_databases x WHERE x.tenant_id = t.id) = 1
		ORDER BY t.slug LIMIT 5`)
	if err != nil {
		return nil, fmt.Errorf("pick tenants to break: %w", err)
	}
	type victim struct{ slug, id, db, payload string }
	victims, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (victim, error) {
		var v victim
		err := r.Scan(&v.slug, &v.id, &v.db, &v.payload)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("pick tenants to break: %w", err)
	}
	if len(victims) < 5 {
		return nil, errors.New("too few healthy tenants to break")
	}
	broken := Broken{}
	setPassword := func(v victim, stored string) error {
		_, err := landlord.Exec(ctx, "UPDATE tenant_databases SET database_password = $1 WHERE id = $2", stored, v.id)
		return err
	}
	// A password rotated in the database but not in the registry.
	wrong, err := c.Encrypt("rotated-elsewhere")
	if err == nil {
		err = setPassword(victims[0], wrong)
	}
	broken["auth_failed"] = victims[0].slug
	// The database was dropped by hand.
	if err == nil {
		_, err = admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{victims[1].db}.Sanitize())
		broken["database_missing"] = victims[1].slug
	}
	// CONNECT revoked during an incident and never given back.
	if err == nil {
		_, err = admin.Exec(ctx, "REVOKE CONNECT ON DATABASE "+pgx.Identifier{victims[2].db}.Sanitize()+" FROM PUBLIC")
		broken["no_connect_privilege"] = victims[2].slug
	}
	// Stored "plain for now".
	var plain string
	if err == nil {
		if plain, err = c.Decrypt(victims[3].payload); err == nil {
			err = setPassword(victims[3], plain)
		}
		broken["credential_plaintext"] = victims[3].slug
	}
	// Encrypted under the APP_KEY before the last rotation.
	if err == nil {
		var pw, old string
		if pw, err = c.Decrypt(victims[4].payload); err == nil {
			if old, err = c.EncryptRetired(pw); err == nil {
				err = setPassword(victims[4], old)
			}
		}
		broken["mac_invalid"] = victims[4].slug
	}
	// The database provisioning found "already exists".
	if err == nil {
		_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{LeftoverDatabase}.Sanitize())
		broken["database_orphan"] = LeftoverDatabase
	}
	if err != nil {
		return nil, fmt.Errorf("plant credential drift: %w", err)
	}
	return broken, nil
}

// createRole creates a login role. CREATE ROLE takes no parameters, so the
// password is a literal; it is one the demo generated itself.
func createRole(ctx context.Context, admin *pgx.Conn, user, password string) error {
	lit := "'" + strings.ReplaceAll(password, "'", "''") + "'"
	_, err := admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{user}.Sanitize()+" LOGIN PASSWORD "+lit)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42710" { // duplicate_object: shared by rows of one tenant
		return nil
	}
	if err != nil {
		return fmt.Errorf("create role %s: %w", user, err)
	}
	return nil
}
