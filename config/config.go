// Package config loads, defaults and validates tenantdrift's configuration.
//
// A configuration file is optional YAML. Decoding is strict: an unknown key,
// a wrong type or a bad value is a Problem naming its key path and line, and
// Load reports every problem at once. Scalars may reference the environment
// as ${VAR} or ${VAR:-default}; secrets can also be read from files with the
// *_file keys. Code downstream accepts only a *Config returned by Load or
// Default, which is always valid.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.yaml.in/yaml/v3"
)

// Environment variables read by Load.
const (
	EnvConfig      = "TENANTDRIFT_CONFIG"
	EnvLandlordDSN = "TENANTDRIFT_LANDLORD_DSN"
	// EnvAppKey and EnvPreviousKeys are Laravel's own variables, read when
	// laravel.app_key and laravel.previous_keys are unset, so a sidecar can
	// share the application's environment.
	EnvAppKey       = "APP_KEY"
	EnvPreviousKeys = "APP_PREVIOUS_KEYS"
	// EnvSlackToken is read when slack.token and slack.token_file are unset.
	EnvSlackToken = "SLACK_BOT_TOKEN"
	// EnvSlackWebhook is read when slack.webhook_url and
	// slack.webhook_url_file are unset.
	EnvSlackWebhook = "SLACK_WEBHOOK_URL"
)

// Presets of the registry layout.
const (
	PresetLaravel = "laravel"
	PresetStancl  = "stancl"
	PresetSpatie  = "spatie"
	PresetCustom  = "custom"
)

// Severities, from most to least severe.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Names of the built-in check kinds.
const (
	CheckRegistryMissing         = "registry_missing"
	CheckRegistryOrphan          = "registry_orphan"
	CheckRegistryDuplicate       = "registry_duplicate"
	CheckFieldMismatch           = "field_mismatch"
	CheckProvisioningStuck       = "provisioning_stuck"
	CheckCredentialUndecryptable = "credential_undecryptable"
	CheckCredentialPlaintext     = "credential_plaintext"
	CheckDBUnreachable           = "db_unreachable"
	CheckDatabaseOrphan          = "database_orphan"
)

// Config is the whole configuration.
type Config struct {
	Landlord Landlord `yaml:"landlord"`
	Registry Registry `yaml:"registry"`
	Laravel  Laravel  `yaml:"laravel"`
	Checks   Checks   `yaml:"checks"`

	// Schedule is the default cron schedule of every check (serve only).
	Schedule string `yaml:"schedule"`
	// RunOnStart runs every check once when serve starts (default true).
	RunOnStart *bool      `yaml:"run_on_start"`
	Server     HTTPServer `yaml:"server"`
	State      State      `yaml:"state"`
	Metrics    Metrics    `yaml:"metrics"`
	Leader     Leader     `yaml:"leader"`
	Slack      Slack      `yaml:"slack"`
	Repair     Repair     `yaml:"repair"`

	file    string
	lines   map[string]int
	literal map[string]bool // Secrets written out in the file, by key path

	// ValidateSchedule checks a cron spec; set by Options.ValidateSchedule.
	ValidateSchedule func(string) error `yaml:"-"`
}

// Landlord is the central database that holds the tenant registry.
type Landlord struct {
	// DSN is a PostgreSQL URL or keyword/value string. It usually carries a
	// password, so it is a Secret.
	DSN     Secret `yaml:"dsn"`
	DSNFile string `yaml:"dsn_file"`
	// ConnectTimeout bounds connecting to the landlord.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// StatementTimeout is set as the session's statement_timeout.
	StatementTimeout Duration `yaml:"statement_timeout"`
}

// Registry describes where and how the landlord keeps its tenants.
type Registry struct {
	// Preset is laravel (default), stancl, spatie or custom.
	Preset string `yaml:"preset"`
	// Schema holds the tables of the presets (default public).
	Schema string `yaml:"schema"`
	// TenantsTable and DatabasesTable name the presets' tables.
	TenantsTable   string `yaml:"tenants_table"`
	DatabasesTable string `yaml:"databases_table"`
	// TenantsQuery and DatabasesQuery are the custom preset's two queries.
	TenantsQuery   string `yaml:"tenants_query"`
	DatabasesQuery string `yaml:"databases_query"`
	// DatabasePrefix and DatabaseSuffix build stancl's default database
	// name (prefix + tenant id + suffix) when tenancy_db_name is unset.
	DatabasePrefix string `yaml:"database_prefix"`
	DatabaseSuffix string `yaml:"database_suffix"`
	// Host, Port and Driver fill in tenant databases whose layout does not
	// store them (stancl, spatie).
	Host   string `yaml:"host"`
	Port   int    `yaml:"port"`
	Driver string `yaml:"driver"`
	// GracePeriod keeps tenants younger than it out of registry_missing and
	// field_mismatch: provisioning writes the two rows seconds apart.
	GracePeriod Duration `yaml:"grace_period"`
	// ExcludedStatuses leaves tenants in these statuses out of every check.
	ExcludedStatuses []string `yaml:"excluded_statuses"`
	// TimeZone is the zone the landlord's timestamps without time zone are
	// written in (Laravel's app.timezone, default UTC).
	TimeZone string `yaml:"time_zone"`
}

// HTTPServer is the daemon's HTTP listener (/metrics, /healthz, /readyz).
type HTTPServer struct {
	// Listen is the address to listen on (default :9788; env
	// TENANTDRIFT_LISTEN and --listen override it).
	Listen string `yaml:"listen"`
	// ShutdownGrace bounds a clean exit on SIGTERM (default 10s).
	ShutdownGrace Duration `yaml:"shutdown_grace"`
}

// State is where the finding history lives.
type State struct {
	// Enabled records history. serve always does; audit does when this is
	// true or dsn is set (and --no-state is not given).
	Enabled *bool `yaml:"enabled"`
	// DSN of the state database; empty means the landlord database.
	DSN     Secret `yaml:"dsn"`
	DSNFile string `yaml:"dsn_file"`
	// Schema holds tenantdrift's tables (default tenantdrift).
	Schema string `yaml:"schema"`
	// Retention keeps resolved findings and old runs this long (default 90 days).
	Retention Duration `yaml:"retention"`
}

// Configured reports whether audit should record to the state store.
func (s State) Configured() bool { return s.Enabled != nil && *s.Enabled || s.DSN != "" }

// Metrics configures the Prometheus exposition.
type Metrics struct {
	// PerTenant exports tenantdrift_tenant_findings per open finding.
	PerTenant bool `yaml:"per_tenant"`
	// PerTenantCap caps those series (default 1000).
	PerTenantCap int `yaml:"per_tenant_cap"`
}

// Leader configures the election that keeps one replica active.
type Leader struct {
	// Heartbeat is how often the leader checks its lock connection and a
	// follower retries the lock (default 5s).
	Heartbeat Duration `yaml:"heartbeat"`
}

// Slack configures alerts. Alerts are on when a bot token or an incoming
// webhook is set; the bot token is the recommended mode, the only one
// that threads replies and edits messages.
type Slack struct {
	// Token is the bot token (xoxb-…). Empty means the SLACK_BOT_TOKEN
	// environment variable.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// WebhookURL is an incoming webhook, used when no token is set: every
	// alert, resolution and reminder is its own message. Empty means the
	// SLACK_WEBHOOK_URL environment variable.
	WebhookURL     Secret `yaml:"webhook_url"`
	WebhookURLFile string `yaml:"webhook_url_file"`
	// Channel is where alerts go unless Channels names one for their
	// severity. Required when a token is set.
	Channel string `yaml:"channel"`
	// Channels maps a severity (critical, warning, info) to its channel.
	Channels map[string]string `yaml:"channels"`
	// APIURL is the Web API base URL; empty means Slack's.
	APIURL string `yaml:"api_url"`
	// StormThreshold: a run with more new findings than this posts one
	// summary instead of the usual messages (default 50); an audit counts
	// the new findings of all its checks together.
	StormThreshold int `yaml:"storm_threshold"`
	// MaxTenantsPerMessage is how many findings a message lists (default 10).
	MaxTenantsPerMessage int `yaml:"max_tenants_per_message"`
	// RunbookURL and DashboardURL are link templates; {{check}} becomes the
	// check name. An empty runbook_url means tenantdrift's own runbook; an
	// empty dashboard_url shows no dashboard link.
	RunbookURL   string `yaml:"runbook_url"`
	DashboardURL string `yaml:"dashboard_url"`
	// MinSeverity is the least severe finding announced (default info).
	MinSeverity string `yaml:"min_severity"`
	// RepeatInterval: a critical finding still open this long after its
	// announcement (or its last reminder) is reminded in the thread
	// (default 4h; 0 turns reminders off).
	RepeatInterval Duration `yaml:"repeat_interval"`
	// DegradedAfter: a check that errors this many runs in a row makes
	// tenantdrift post one "degraded" alert, and one recovery message when
	// it runs again (default 3).
	DegradedAfter int `yaml:"degraded_after"`
}

// Enabled reports whether Slack alerts are configured.
func (s Slack) Enabled() bool { return s.Token != "" || s.WebhookURL != "" }

// Webhook reports whether alerts go through an incoming webhook (no bot
// token is set).
func (s Slack) Webhook() bool { return s.Token == "" && s.WebhookURL != "" }

// ChannelFor returns the channel for findings of severity.
func (s Slack) ChannelFor(severity string) string {
	if c := s.Channels[severity]; c != "" {
		return c
	}
	return s.Channel
}

// DefaultListen is serve's default address: 9788 is used by no common
// exporter.
const DefaultListen = ":9788"

// Laravel holds what tenantdrift needs to read Laravel's encrypted
// database passwords.
type Laravel struct {
	// AppKey is Laravel's APP_KEY ("base64:..." or raw). Empty means the
	// APP_KEY environment variable.
	AppKey     Secret `yaml:"app_key"`
	AppKeyFile string `yaml:"app_key_file"`
	// PreviousKeys is APP_PREVIOUS_KEYS: comma-separated keys from before a
	// rotation. Empty means the APP_PREVIOUS_KEYS environment variable.
	PreviousKeys     Secret `yaml:"previous_keys"`
	PreviousKeysFile string `yaml:"previous_keys_file"`
	// Cipher is Laravel's app.cipher (default aes-256-cbc).
	Cipher string `yaml:"cipher"`
	// PasswordFormat is how passwords were encrypted: auto (default),
	// php-serialized (encrypt()) or raw (encryptString(), the encrypted cast).
	PasswordFormat string `yaml:"password_format"`
}

// HasKey reports whether an APP_KEY is configured.
func (l Laravel) HasKey() bool { return l.AppKey != "" }

// Check holds the settings every check kind shares.
type Check struct {
	Enabled  *bool    `yaml:"enabled"`
	Severity string   `yaml:"severity"`
	Timeout  Duration `yaml:"timeout"`
	// Schedule overrides the top-level schedule for this check (serve).
	Schedule string `yaml:"schedule"`
}

// IsEnabled reports whether the check runs (checks run unless disabled).
func (c Check) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// FieldMismatch configures the field_mismatch check.
type FieldMismatch struct {
	Check  `yaml:",inline"`
	Fields []string `yaml:"fields"`
}

// ProvisioningStuck configures the provisioning_stuck check.
type ProvisioningStuck struct {
	Check     `yaml:",inline"`
	Statuses  []string `yaml:"statuses"`
	Threshold Duration `yaml:"threshold"`
}

// DBUnreachable configures the db_unreachable check's probes.
type DBUnreachable struct {
	Check `yaml:",inline"`
	// Concurrency bounds simultaneous probes (default 16).
	Concurrency int `yaml:"concurrency"`
	// ProbeTimeout is each probe's deadline (default 5s).
	ProbeTimeout Duration `yaml:"probe_timeout"`
	// SSLMode applies when a row's connection_config does not set one.
	SSLMode string `yaml:"sslmode"`
}

// Server is a database server to inventory for database_orphan.
type Server struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	Database     string `yaml:"database"`
	SSLMode      string `yaml:"sslmode"`
}

// DatabaseOrphan configures the database_orphan check.
type DatabaseOrphan struct {
	Check `yaml:",inline"`
	// Pattern is a LIKE pattern tenant databases match (default tenant_%).
	Pattern string `yaml:"pattern"`
	// Ignore lists database names never reported.
	Ignore []string `yaml:"ignore"`
	// Servers to inventory besides the landlord's own server. Credentials
	// default to the landlord's.
	Servers []Server `yaml:"servers"`
	// RegistryServers also inventories every host:port the registry names
	// (default true), with the landlord's credentials.
	RegistryServers *bool `yaml:"registry_servers"`
}

// Checks configures each built-in check kind.
type Checks struct {
	RegistryMissing         Check             `yaml:"registry_missing"`
	RegistryOrphan          Check             `yaml:"registry_orphan"`
	RegistryDuplicate       Check             `yaml:"registry_duplicate"`
	FieldMismatch           FieldMismatch     `yaml:"field_mismatch"`
	ProvisioningStuck       ProvisioningStuck `yaml:"provisioning_stuck"`
	CredentialUndecryptable Check             `yaml:"credential_undecryptable"`
	CredentialPlaintext     Check             `yaml:"credential_plaintext"`
	DBUnreachable           DBUnreachable     `yaml:"db_unreachable"`
	DatabaseOrphan          DatabaseOrphan    `yaml:"database_orphan"`
}

// ByName returns the shared settings of every check kind, keyed by name.
func (c *Checks) ByName() map[string]Check {
	return map[string]Check{
		CheckRegistryMissing:         c.RegistryMissing,
		CheckRegistryOrphan:          c.RegistryOrphan,
		CheckRegistryDuplicate:       c.RegistryDuplicate,
		CheckFieldMismatch:           c.FieldMismatch.Check,
		CheckProvisioningStuck:       c.ProvisioningStuck.Check,
		CheckCredentialUndecryptable: c.CredentialUndecryptable,
		CheckCredentialPlaintext:     c.CredentialPlaintext,
		CheckDBUnreachable:           c.DBUnreachable.Check,
		CheckDatabaseOrphan:          c.DatabaseOrphan.Check,
	}
}

// CheckNames lists the built-in check kinds in their report order.
func CheckNames() []string {
	return []string{CheckRegistryMissing, CheckRegistryOrphan, CheckRegistryDuplicate, CheckFieldMismatch, CheckProvisioningStuck,
		CheckCredentialUndecryptable, CheckCredentialPlaintext, CheckDBUnreachable, CheckDatabaseOrphan}
}

// Default returns the configuration used when no file is given. Its landlord
// DSN is empty: Load fills it from the environment.
func Default() *Config {
	return &Config{
		Landlord: Landlord{
			ConnectTimeout:   Duration(10 * time.Second),
			StatementTimeout: Duration(60 * time.Second),
		},
		Registry: Registry{
			Preset:           PresetLaravel,
			Schema:           "public",
			TenantsTable:     "tenants",
			DatabasesTable:   "tenant_databases",
			DatabasePrefix:   "tenant",
			Port:             5432,
			Driver:           "pgsql",
			GracePeriod:      Duration(15 * time.Minute),
			ExcludedStatuses: []string{},
			TimeZone:         "UTC",
		},
		Checks: Checks{
			RegistryMissing:   Check{Severity: SeverityCritical, Timeout: Duration(time.Minute)},
			RegistryOrphan:    Check{Severity: SeverityWarning, Timeout: Duration(time.Minute)},
			RegistryDuplicate: Check{Severity: SeverityCritical, Timeout: Duration(time.Minute)},
			FieldMismatch: FieldMismatch{
				Check:  Check{Severity: SeverityWarning, Timeout: Duration(time.Minute)},
				Fields: []string{"slug", "database_name"},
			},
			ProvisioningStuck: ProvisioningStuck{
				Check:     Check{Severity: SeverityWarning, Timeout: Duration(time.Minute)},
				Statuses:  []string{"provisioning"},
				Threshold: Duration(30 * time.Minute),
			},
			CredentialUndecryptable: Check{Severity: SeverityCritical, Timeout: Duration(time.Minute)},
			CredentialPlaintext:     Check{Severity: SeverityWarning, Timeout: Duration(time.Minute)},
			DBUnreachable: DBUnreachable{
				Check:        Check{Severity: SeverityCritical, Timeout: Duration(10 * time.Minute)},
				Concurrency:  16,
				ProbeTimeout: Duration(5 * time.Second),
				SSLMode:      "prefer",
			},
			DatabaseOrphan: DatabaseOrphan{
				Check:   Check{Severity: SeverityWarning, Timeout: Duration(time.Minute)},
				Pattern: "tenant_%",
				Ignore:  []string{},
			},
		},
		Laravel:  Laravel{Cipher: "aes-256-cbc", PasswordFormat: "auto"},
		Schedule: "@every 5m",
		Server:   HTTPServer{Listen: DefaultListen, ShutdownGrace: Duration(10 * time.Second)},
		State:    State{Schema: "tenantdrift", Retention: Duration(90 * 24 * time.Hour)},
		Metrics:  Metrics{PerTenantCap: 1000},
		Leader:   Leader{Heartbeat: Duration(5 * time.Second)},
		Slack: Slack{StormThreshold: 50, MaxTenantsPerMessage: 10, MinSeverity: SeverityInfo,
			RepeatInterval: Duration(4 * time.Hour), DegradedAfter: 3},
		Repair: Repair{
			MaxRepairsPerRun: 10,
			BreakerRatio:     0.2,
			Tenants:          TenantFilter{Allow: []string{}, Deny: []string{}},
			Actions: RepairActions{
				RegistryMissing: RegistryMissingRepair{
					Mode: ModePlan, Port: 5432, Driver: "pgsql", Username: "{{slug}}_user", Status: "active",
				},
				FieldMismatch:       FieldMismatchRepair{Mode: ModePlan, SourceOfTruth: map[string]string{}},
				CredentialPlaintext: ModeOnly{Mode: ModePlan},
				ProvisioningStuck:   ProvisioningStuckRepair{Mode: ModeOff, SetStatus: "failed"},
			},
		},
		lines: map[string]int{},
	}
}

// Options tell Load where to read from. The zero value reads no file and
// takes the environment from the process.
type Options struct {
	// File is the config file; empty means TENANTDRIFT_CONFIG, and if that
	// is empty too, no file (defaults and environment only).
	File string
	// LookupEnv replaces os.LookupEnv, for tests.
	LookupEnv func(string) (string, bool)
	// RequireLandlord makes a missing landlord DSN a problem.
	RequireLandlord bool
	// ValidateSchedule, when set, validates every cron spec (package
	// schedule's Parse), so a bad spec is a config problem naming its key.
	ValidateSchedule func(spec string) error
}

// Error is every problem Load found, in file order.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "\n")
}

// Load reads, interpolates, decodes and validates the configuration. On
// failure it returns an *Error listing every problem found; it reads the
// file at most once and never returns a partially valid Config.
func Load(opts Options) (*Config, error) {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	cfg := Default()
	cfg.ValidateSchedule = opts.ValidateSchedule
	file := opts.File
	if file == "" {
		file, _ = lookup(EnvConfig)
	}
	cfg.literal = map[string]bool{}
	d := &decoder{file: file, getenv: lookup, lines: cfg.lines, literal: cfg.literal}
	if file != "" {
		cfg.file = file
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, &Error{Problems: []Problem{{File: file, Msg: "cannot read config file: " + describeFileErr(err)}}}
		}
		d.decodeDocument(data, cfg)
	}
	if d.syntax {
		return nil, &Error{Problems: d.problems}
	}
	// Validate even after decode problems, so every problem is reported at
	// once; a value that failed to decode keeps its (valid) default.
	problems := slices.Concat(d.problems, cfg.resolveSecrets(lookup))
	problems = append(problems, cfg.validate(opts.RequireLandlord)...)
	slices.SortStableFunc(problems, func(a, b Problem) int { return a.Line - b.Line })
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return cfg, nil
}

func describeFileErr(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (d *decoder) decodeDocument(data []byte, cfg *Config) {
	if len(bytes.TrimSpace(data)) == 0 {
		return
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return
	} else if err != nil {
		d.syntax = true
		d.problems = append(d.problems, Problem{File: d.file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.syntax = true
		d.problems = append(d.problems, Problem{File: d.file, Line: extra.Line, Msg: "more than one YAML document; put everything in one"})
		return
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return
	}
	d.decode(root, reflect.ValueOf(cfg).Elem(), "")
}

func (c *Config) problem(path, format string, args ...any) Problem {
	return Problem{File: c.file, Line: c.lines[path], Path: path, Msg: fmt.Sprintf(format, args...)}
}

// resolveSecrets reads *_file references and the environment fallback.
func (c *Config) resolveSecrets(lookup func(string) (string, bool)) []Problem {
	var out []Problem
	fromFile := func(path string, dst *Secret, key, fileKey string) {
		if path == "" {
			return
		}
		if *dst != "" {
			out = append(out, c.problem(fileKey, "set either %s or %s, not both", key, fileKey))
			return
		}
		s, err := readSecretFile(path)
		if err != nil {
			out = append(out, c.problem(fileKey, "cannot read %s: %s", path, describeFileErr(err)))
			return
		}
		if strings.TrimSpace(s) == "" {
			// An empty secret would silently turn its feature off.
			out = append(out, c.problem(fileKey, "%s is empty", path))
			return
		}
		*dst = Secret(s)
	}
	fromFile(c.Landlord.DSNFile, &c.Landlord.DSN, "landlord.dsn", "landlord.dsn_file")
	fromFile(c.Laravel.AppKeyFile, &c.Laravel.AppKey, "laravel.app_key", "laravel.app_key_file")
	fromFile(c.State.DSNFile, &c.State.DSN, "state.dsn", "state.dsn_file")
	fromFile(c.Slack.TokenFile, &c.Slack.Token, "slack.token", "slack.token_file")
	fromFile(c.Slack.WebhookURLFile, &c.Slack.WebhookURL, "slack.webhook_url", "slack.webhook_url_file")
	rm := &c.Repair.Actions.RegistryMissing
	fromFile(rm.PasswordFile, &rm.Password, "repair.actions.registry_missing.password", "repair.actions.registry_missing.password_file")
	fromFile(c.Laravel.PreviousKeysFile, &c.Laravel.PreviousKeys, "laravel.previous_keys", "laravel.previous_keys_file")
	for i := range c.Checks.DatabaseOrphan.Servers {
		s := &c.Checks.DatabaseOrphan.Servers[i]
		p := fmt.Sprintf("checks.database_orphan.servers[%d]", i)
		fromFile(s.PasswordFile, &s.Password, p+".password", p+".password_file")
	}
	// The environment fills what neither the file nor a *_file set.
	for _, e := range []struct {
		dst *Secret
		env string
	}{
		{&c.Landlord.DSN, EnvLandlordDSN},
		{&c.Laravel.AppKey, EnvAppKey},
		{&c.Laravel.PreviousKeys, EnvPreviousKeys},
		{&c.Slack.Token, EnvSlackToken},
		{&c.Slack.WebhookURL, EnvSlackWebhook},
	} {
		if *e.dst != "" {
			continue
		}
		if v, ok := lookup(e.env); ok {
			*e.dst = Secret(strings.TrimSpace(v))
		}
	}
	return out
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func validSeverity(s string) bool {
	return s == SeverityCritical || s == SeverityWarning || s == SeverityInfo
}

func (c *Config) validate(requireLandlord bool) []Problem {
	var out []Problem
	add := func(path, format string, args ...any) { out = append(out, c.problem(path, format, args...)) }

	if requireLandlord && c.Landlord.DSN == "" {
		add("landlord.dsn", "no landlord database given: set %s or landlord.dsn (or landlord.dsn_file) in a config file", EnvLandlordDSN)
	}
	if c.Landlord.ConnectTimeout <= 0 {
		add("landlord.connect_timeout", "must be positive")
	}
	if c.Landlord.StatementTimeout < 0 {
		add("landlord.statement_timeout", "must not be negative")
	}

	r := &c.Registry
	switch r.Preset {
	case PresetLaravel, PresetStancl, PresetSpatie:
		if strings.TrimSpace(r.TenantsQuery) != "" || strings.TrimSpace(r.DatabasesQuery) != "" {
			add("registry.tenants_query", "tenants_query and databases_query are only used with preset custom (preset is %s)", r.Preset)
		}
		for _, k := range []struct{ path, v string }{
			{"registry.schema", r.Schema}, {"registry.tenants_table", r.TenantsTable}, {"registry.databases_table", r.DatabasesTable},
		} {
			if k.v == "" {
				add(k.path, "must not be empty")
			}
		}
	case PresetCustom:
		if strings.TrimSpace(r.TenantsQuery) == "" {
			add("registry.tenants_query", "preset custom needs a query returning id, slug, name, status, database_name, created_at")
		}
		if strings.TrimSpace(r.DatabasesQuery) == "" {
			add("registry.databases_query", "preset custom needs a query returning id, tenant_id, slug, database_name, host, port, username, password, driver, status, created_at, connection_config")
		}
	default:
		add("registry.preset", "unknown preset %q (use laravel, stancl, spatie or custom)", r.Preset)
	}
	if r.Port < 1 || r.Port > 65535 {
		add("registry.port", "must be a TCP port (1-65535), got %d", r.Port)
	}
	if r.GracePeriod < 0 {
		add("registry.grace_period", "must not be negative")
	}
	if _, err := time.LoadLocation(r.TimeZone); err != nil || r.TimeZone == "" {
		add("registry.time_zone", "unknown time zone %q", r.TimeZone)
	}

	byName := c.Checks.ByName()
	for _, name := range CheckNames() {
		ch := byName[name]
		p := "checks." + name
		if !validSeverity(ch.Severity) {
			add(p+".severity", "unknown severity %q (use critical, warning or info)", ch.Severity)
		}
		if ch.Timeout <= 0 {
			add(p+".timeout", "must be positive")
		}
	}
	fm := c.Checks.FieldMismatch
	if fm.IsEnabled() && len(fm.Fields) == 0 {
		add("checks.field_mismatch.fields", "list at least one field to compare, or disable the check")
	}
	for i, f := range fm.Fields {
		if !identRE.MatchString(f) {
			add(fmt.Sprintf("checks.field_mismatch.fields[%d]", i), "%q is not a column name", f)
		}
		if slices.Contains(fm.Fields[:i], f) {
			add(fmt.Sprintf("checks.field_mismatch.fields[%d]", i), "%q is listed twice", f)
		}
	}
	ps := c.Checks.ProvisioningStuck
	if ps.IsEnabled() && len(ps.Statuses) == 0 {
		add("checks.provisioning_stuck.statuses", "list at least one provisioning status, or disable the check")
	}
	if ps.Threshold <= 0 {
		add("checks.provisioning_stuck.threshold", "must be positive")
	}
	switch strings.ToLower(c.Laravel.Cipher) {
	case "aes-128-cbc", "aes-256-cbc", "aes-128-gcm", "aes-256-gcm":
	default:
		add("laravel.cipher", "unknown cipher %q (use aes-256-cbc, aes-128-cbc, aes-256-gcm or aes-128-gcm)", c.Laravel.Cipher)
	}
	switch c.Laravel.PasswordFormat {
	case "auto", "php-serialized", "raw":
	default:
		add("laravel.password_format", "unknown format %q (use auto, php-serialized or raw)", c.Laravel.PasswordFormat)
	}
	du := c.Checks.DBUnreachable
	if du.Concurrency < 1 || du.Concurrency > 1000 {
		add("checks.db_unreachable.concurrency", "must be between 1 and 1000, got %d", du.Concurrency)
	}
	if du.ProbeTimeout <= 0 {
		add("checks.db_unreachable.probe_timeout", "must be positive")
	}
	if !validSSLMode(du.SSLMode) {
		add("checks.db_unreachable.sslmode", "unknown sslmode %q (use disable, allow, prefer, require, verify-ca or verify-full)", du.SSLMode)
	}
	do := c.Checks.DatabaseOrphan
	if strings.TrimSpace(do.Pattern) == "" {
		add("checks.database_orphan.pattern", "must not be empty (a LIKE pattern such as tenant_%%)")
	}
	for i, s := range do.Servers {
		p := fmt.Sprintf("checks.database_orphan.servers[%d]", i)
		if s.Host == "" {
			add(p+".host", "must not be empty")
		}
		if s.Port < 0 || s.Port > 65535 {
			add(p+".port", "must be a TCP port (1-65535), got %d", s.Port)
		}
		if s.SSLMode != "" && !validSSLMode(s.SSLMode) {
			add(p+".sslmode", "unknown sslmode %q", s.SSLMode)
		}
	}
	if strings.TrimSpace(c.Schedule) == "" {
		add("schedule", "must not be empty (a cron spec such as \"*/5 * * * *\" or \"@every 5m\")")
	} else if c.ValidateSchedule != nil {
		if err := c.ValidateSchedule(c.Schedule); err != nil {
			add("schedule", "%v", err)
		}
	}
	for _, name := range CheckNames() {
		if s := byName[name].Schedule; s != "" && c.ValidateSchedule != nil {
			if err := c.ValidateSchedule(s); err != nil {
				add("checks."+name+".schedule", "%v", err)
			}
		}
	}
	if c.Server.ShutdownGrace <= 0 {
		add("server.shutdown_grace", "must be positive")
	}
	if _, _, err := net.SplitHostPort(c.Server.Listen); err != nil {
		add("server.listen", "%q is not an address with a port (e.g. \":9788\" or \"127.0.0.1:9788\")", c.Server.Listen)
	}
	// The DSNs are secrets: a parse error may quote them, so say what is
	// wrong without it.
	for _, d := range []struct {
		path string
		dsn  Secret
	}{{"landlord.dsn", c.Landlord.DSN}, {"state.dsn", c.State.DSN}} {
		if d.dsn == "" {
			continue
		}
		if _, err := pgconn.ParseConfig(d.dsn.Reveal()); err != nil {
			add(d.path, "not a valid PostgreSQL connection string (a postgres:// URL or key=value pairs; check the port, sslmode and quoting)")
		}
	}
	if !schemaRE.MatchString(c.State.Schema) {
		add("state.schema", "%q is not a plain lower-case identifier", c.State.Schema)
	}
	if c.State.Retention <= 0 {
		add("state.retention", "must be positive")
	}
	if c.Metrics.PerTenantCap < 0 {
		add("metrics.per_tenant_cap", "must not be negative")
	}
	if c.Leader.Heartbeat < 100*Duration(time.Millisecond) {
		add("leader.heartbeat", "must be at least 100ms")
	}
	out = append(out, c.validateSlack()...)
	out = append(out, c.validateRepair()...)
	slices.SortStableFunc(out, func(a, b Problem) int { return a.Line - b.Line })
	return out
}

func (c *Config) validateSlack() []Problem {
	var out []Problem
	add := func(path, format string, args ...any) { out = append(out, c.problem(path, format, args...)) }
	s := c.Slack
	if s.Token != "" && strings.TrimSpace(s.Channel) == "" {
		add("slack.channel", "must be set when a Slack token is (the channel alerts go to, e.g. \"#tenant-alerts\" or an ID)")
	}
	// The token and the webhook are credentials: a file that holds them
	// leaks them with every copy of itself.
	if c.literal["slack.token"] {
		add("slack.token", "write the bot token as a reference, ${%s} (or another variable), or use slack.token_file; never in the config file", EnvSlackToken)
	}
	if c.literal["slack.webhook_url"] {
		add("slack.webhook_url", "write the webhook URL as a reference, ${%s} (or another variable), or use slack.webhook_url_file; never in the config file", EnvSlackWebhook)
	}
	if s.Token != "" && s.WebhookURL != "" {
		add("slack.webhook_url", "a bot token and a webhook URL are both set (from the file, a *_file key or %s/%s): keep the token, which threads and edits, or the webhook, not both", EnvSlackToken, EnvSlackWebhook)
	}
	if w := s.WebhookURL.Reveal(); w != "" && !strings.HasPrefix(w, "https://") && !strings.HasPrefix(w, "http://") {
		add("slack.webhook_url", "must be an http(s) URL (the value is not shown: it is a secret)")
	}
	if s.RepeatInterval < 0 {
		add("slack.repeat_interval", "must not be negative (0 turns reminders off)")
	}
	if s.DegradedAfter < 1 {
		add("slack.degraded_after", "must be at least 1, got %d", s.DegradedAfter)
	}
	sevs := make([]string, 0, len(s.Channels))
	for sev := range s.Channels {
		sevs = append(sevs, sev)
	}
	slices.Sort(sevs)
	for _, sev := range sevs {
		if !validSeverity(sev) {
			add("slack.channels."+sev, "unknown severity %q (use critical, warning or info)", sev)
		} else if strings.TrimSpace(s.Channels[sev]) == "" {
			add("slack.channels."+sev, "must not be empty")
		}
	}
	if !validSeverity(s.MinSeverity) {
		add("slack.min_severity", "unknown severity %q (use critical, warning or info)", s.MinSeverity)
	}
	if s.StormThreshold < 1 {
		add("slack.storm_threshold", "must be at least 1, got %d", s.StormThreshold)
	}
	if s.MaxTenantsPerMessage < 1 {
		add("slack.max_tenants_per_message", "must be at least 1, got %d", s.MaxTenantsPerMessage)
	}
	if s.APIURL != "" && !strings.HasPrefix(s.APIURL, "https://") && !strings.HasPrefix(s.APIURL, "http://") {
		add("slack.api_url", "must be an http(s) URL, got %q", s.APIURL)
	}
	return out
}

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ScheduleOf returns a check's effective schedule.
func (c *Config) ScheduleOf(name string) string {
	if s := c.Checks.ByName()[name].Schedule; s != "" {
		return s
	}
	return c.Schedule
}

// IsRunOnStart reports whether serve runs every check at start-up.
func (c *Config) IsRunOnStart() bool { return c.RunOnStart == nil || *c.RunOnStart }

func validSSLMode(m string) bool {
	switch m {
	case "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
		return true
	}
	return false
}

// ExplicitlyEnabled reports whether a check's enabled key was set to true
// in the configuration (rather than left to its default).
func (c Check) ExplicitlyEnabled() bool { return c.Enabled != nil && *c.Enabled }

// File returns the path the configuration was read from, or "".
func (c *Config) File() string { return c.file }
