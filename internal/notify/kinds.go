package notify

import "github.com/tenantdrift/tenantdrift/config"

// title is a check kind's human title, for a message's header.
func title(checkName string) string {
	switch checkName {
	case config.CheckRegistryMissing:
		return "Tenant without a database row"
	case config.CheckRegistryOrphan:
		return "Database row without a tenant"
	case config.CheckRegistryDuplicate:
		return "Tenant or database registered twice"
	case config.CheckFieldMismatch:
		return "Tenant fields disagree between tables"
	case config.CheckProvisioningStuck:
		return "Provisioning never finished"
	case config.CheckCredentialUndecryptable:
		return "Database password does not decrypt"
	case config.CheckCredentialPlaintext:
		return "Database password stored in clear text"
	case config.CheckDBUnreachable:
		return "Tenant database unreachable"
	case config.CheckDatabaseOrphan:
		return "Database that no tenant claims"
	}
	return "Registry drift"
}

// impact says in one phrase what a check kind's findings break for users;
// "" for kinds it does not know.
func impact(checkName string) string {
	switch checkName {
	case config.CheckRegistryMissing:
		return "password reset and every connection to this tenant's database fail"
	case config.CheckRegistryOrphan:
		return "nothing visible yet; credentials and data sit unowned and unbilled"
	case config.CheckRegistryDuplicate:
		return "which database a tenant reaches depends on query order; one tenant may see another's data"
	case config.CheckFieldMismatch:
		return "routing by slug or connecting by database name reaches the wrong place or nothing"
	case config.CheckProvisioningStuck:
		return "the tenant cannot use the product until provisioning is completed or failed"
	case config.CheckCredentialUndecryptable:
		return "the application cannot connect to this tenant's database, so its requests fail"
	case config.CheckCredentialPlaintext:
		return "nothing breaks today; the password is readable by anyone with registry or backup access"
	case config.CheckDBUnreachable:
		return "every request for this tenant fails"
	case config.CheckDatabaseOrphan:
		return "nothing visible yet; the next provisioning of that name may fail with \"already exists\""
	}
	return ""
}

// severityEmoji is the coloured emoji for a severity.
func severityEmoji(severity string) string {
	switch severity {
	case config.SeverityCritical:
		return ":red_circle:"
	case config.SeverityWarning:
		return ":large_orange_circle:"
	case config.SeverityInfo:
		return ":large_blue_circle:"
	}
	return ":white_circle:"
}
