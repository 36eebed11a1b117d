package checks

import "github.com/tenantdrift/tenantdrift/config"

// Explain says in two sentences what a check's finding means and what it
// breaks for users; the demo prints it for the worst finding, and later
// alerts reuse it.
func Explain(name string) string {
	switch name {
	case config.CheckRegistryMissing:
		return "The tenant exists in tenants but has no tenant_databases row, so everything that looks up its database connection fails: password reset, migrations, queued jobs (\"Tenant database configuration not found\"). " +
			"This is the incident tenantdrift was built for: provisioning wrote the first row and never the second, and nobody knew until a user could not log in."
	case config.CheckRegistryOrphan:
		return "A tenant_databases row belongs to no tenant, so it holds credentials and a database nobody owns or bills. " +
			"It usually means a tenant was deleted without its database, or provisioning wrote the rows with different ids."
	case config.CheckRegistryDuplicate:
		return "More than one registry row claims the same tenant or the same database, so which database the app connects to depends on query order. " +
			"At worst one tenant reads or writes another tenant's data."
	case config.CheckFieldMismatch:
		return "A value copied into both tenants and tenant_databases differs between them, so code that reads one table and code that reads the other disagree about the tenant. " +
			"Routing by slug or connecting by database_name then reaches the wrong place or nothing at all."
	case config.CheckProvisioningStuck:
		return "A tenant database has been in a provisioning status far longer than provisioning takes, so the job that should finish it died. " +
			"The tenant cannot use the product until someone completes or fails it."
	case config.CheckCredentialUndecryptable:
		return "The stored database password cannot be decrypted with the configured APP_KEY, so the application cannot connect to this tenant's database either. " +
			"It usually follows an APP_KEY rotation that did not keep the old key in APP_PREVIOUS_KEYS."
	case config.CheckCredentialPlaintext:
		return "The database password is stored in clear text, readable by anyone with read access to tenant_databases, backups included. " +
			"Laravel still uses it, so nothing breaks today; re-encrypt it with encrypt()."
	case config.CheckDBUnreachable:
		return "Connecting with the registry's own credentials fails, so every request for this tenant fails the same way. " +
			"The reason says where to look: auth_failed is a stale password, database_missing a dropped database, the network reasons a server or firewall."
	case config.CheckDatabaseOrphan:
		return "A database that looks like a tenant's exists on a server, but no registry row claims it. " +
			"It holds data nobody owns (often a failed provisioning run's leftover, which then makes the next run find it \"already exists\")."
	}
	return ""
}
