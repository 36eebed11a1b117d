// Package repair fixes registry drift under an explicit policy. Plan turns
// findings into actions by reading the rows they are about; Decide, a pure
// function, says which of them may be written; Apply writes each in one
// transaction with its audit-log row, guarded by compare-and-swap; Verify
// marks a repair whose drift persists as failed.
//
// Only four actions exist, and none deletes anything: inserting a missing
// tenant_databases row, copying a mismatched field from its source of
// truth, encrypting a password stored in clear text, and setting the
// status of a row stuck in provisioning. Orphans, duplicates and
// unreachable databases always need a human.
package repair

import (
	"github.com/tenantdrift/tenantdrift/config"
)

// Actions, each named for what it does; the check it repairs is in
// Action.Check.
const (
	ActionInsertRow       = "insert_database_row" // registry_missing
	ActionCopyField       = "copy_field"          // field_mismatch
	ActionEncryptPassword = "encrypt_password"    // credential_plaintext
	ActionSetStatus       = "set_status"          // provisioning_stuck
)

// ActionNames lists every action, for pre-initialised metric labels.
func ActionNames() []string {
	return []string{ActionInsertRow, ActionCopyField, ActionEncryptPassword, ActionSetStatus}
}

// actionFor returns the action repairing check name, or "".
func actionFor(name string) string {
	switch name {
	case config.CheckRegistryMissing:
		return ActionInsertRow
	case config.CheckFieldMismatch:
		return ActionCopyField
	case config.CheckCredentialPlaintext:
		return ActionEncryptPassword
	case config.CheckProvisioningStuck:
		return ActionSetStatus
	}
	return ""
}

// Statuses of an action.
const (
	StatusPlanned  = "planned"  // would be done; nothing written
	StatusApplied  = "applied"  // written and committed with its audit row
	StatusSkipped  = "skipped"  // the policy held it back (Reason says why)
	StatusConflict = "conflict" // the row changed since it was read
	StatusFailed   = "failed"   // the write failed, or the drift persists after it
)

// Masked stands for a password in every output.
const Masked = "********"

// Action is one repair of one finding.
type Action struct {
	Action     string `json:"action"`
	Check      string `json:"check"`
	TenantID   string `json:"tenant_id"`
	TenantSlug string `json:"tenant_slug"`
	Table      string `json:"table"`
	// Column is the column changed; for an inserted row, the columns
	// written, comma-separated.
	Column string `json:"column"`
	// Before and After are what the plan shows, passwords masked: nil is
	// SQL NULL or, for Before of an insert, no row.
	Before *string `json:"before"`
	After  *string `json:"after"`
	Status string  `json:"status"`
	Reason string  `json:"reason"`

	// Fingerprint is the finding's, for verification.
	Fingerprint string `json:"-"`
	// Apply says Decide cleared the action to be written.
	Apply bool `json:"-"`
	// RecordID is the audit-log row of an applied action.
	RecordID int64 `json:"-"`

	// values are an inserted row's columns and shown values.
	values [][2]string
	write  write
}

func ptr(s string) *string { return &s }
