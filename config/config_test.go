package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/config"
)

// env returns a LookupEnv over a fixed map, so tests never read the real
// environment.
func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := kv[k]
		return v, ok
	}
}

func load(t *testing.T, file string, kv map[string]string) (*config.Config, error) {
	t.Helper()
	return config.Load(config.Options{File: file, LookupEnv: env(kv), RequireLandlord: true})
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tenantdrift.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestDefaultsWithoutFile(t *testing.T) {
	cfg, err := load(t, "", map[string]string{config.EnvLandlordDSN: "postgres://u:pw@db/landlord"})
	require.NoError(t, err)
	assert.Equal(t, "postgres://u:pw@db/landlord", cfg.Landlord.DSN.Reveal())
	assert.Equal(t, config.PresetLaravel, cfg.Registry.Preset)
	assert.Equal(t, 15*time.Minute, cfg.Registry.GracePeriod.D())
	assert.Equal(t, []string{"slug", "database_name"}, cfg.Checks.FieldMismatch.Fields)
	assert.Equal(t, 30*time.Minute, cfg.Checks.ProvisioningStuck.Threshold.D())
	assert.Equal(t, "critical", cfg.Checks.RegistryMissing.Severity)
	assert.True(t, cfg.Checks.RegistryOrphan.IsEnabled())
}

func TestMissingLandlord(t *testing.T) {
	_, err := load(t, "", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "landlord.dsn: no landlord database given: set TENANTDRIFT_LANDLORD_DSN")
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := load(t, "tenantdrift.example.yaml", map[string]string{config.EnvLandlordDSN: "postgres://localhost/landlord"})
	require.NoError(t, err)
	// The example documents the defaults: loading it changes nothing.
	def := config.Default()
	assert.Equal(t, def.Registry, cfg.Registry)
	assert.Equal(t, def.Checks.FieldMismatch.Fields, cfg.Checks.FieldMismatch.Fields)
	assert.False(t, cfg.Slack.Enabled())
	assert.Equal(t, def.Slack.StormThreshold, cfg.Slack.StormThreshold)
	assert.Equal(t, def.Slack.MaxTenantsPerMessage, cfg.Slack.MaxTenantsPerMessage)
	assert.Equal(t, def.Slack.MinSeverity, cfg.Slack.MinSeverity)
	assert.Empty(t, cfg.Slack.Channels)
	assert.Equal(t, def.Slack.RepeatInterval, cfg.Slack.RepeatInterval)
	assert.Equal(t, def.Slack.DegradedAfter, cfg.Slack.DegradedAfter)
	assert.Equal(t, def.Repair, cfg.Repair)
	for name, c := range cfg.Checks.ByName() {
		d := def.Checks.ByName()[name]
		assert.Equal(t, d.Severity, c.Severity, name)
		assert.Equal(t, d.Timeout, c.Timeout, name)
		assert.True(t, c.IsEnabled(), name)
	}
}

func TestEnvironmentInterpolation(t *testing.T) {
	p := writeFile(t, `
landlord:
  dsn: postgres://tenantdrift:${PGPASS}@${PGHOST:-localhost}:5432/landlord
registry:
  excluded_statuses: ["${SKIP}", "literal $$ sign"]
checks:
  registry_missing:
    severity: ${SEV:-critical}
`)
	cfg, err := load(t, p, map[string]string{"PGPASS": "s3cr:t", "SKIP": "suspended"})
	require.NoError(t, err)
	assert.Equal(t, "postgres://tenantdrift:s3cr:t@localhost:5432/landlord", cfg.Landlord.DSN.Reveal())
	assert.Equal(t, []string{"suspended", "literal $ sign"}, cfg.Registry.ExcludedStatuses)
	assert.Equal(t, "critical", cfg.Checks.RegistryMissing.Severity)
}

func TestInterpolatedValueIsNotYAML(t *testing.T) {
	// A value from the environment is text, never parsed as YAML again.
	p := writeFile(t, "landlord:\n  dsn: ${DSN}\n")
	cfg, err := load(t, p, map[string]string{"DSN": "host=db password='a: b # not a comment\nx: y'"})
	require.NoError(t, err)
	assert.Equal(t, "host=db password='a: b # not a comment\nx: y'", cfg.Landlord.DSN.Reveal())
}

func TestDSNFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "dsn")
	require.NoError(t, os.WriteFile(secret, []byte("postgres://u:from-file@db/landlord\n"), 0o600))
	p := writeFile(t, fmt.Sprintf("landlord:\n  dsn_file: %s\n", secret))
	cfg, err := load(t, p, map[string]string{config.EnvLandlordDSN: "postgres://ignored"})
	require.NoError(t, err)
	assert.Equal(t, "postgres://u:from-file@db/landlord", cfg.Landlord.DSN.Reveal())
}

func TestConfigFromEnvironmentVariable(t *testing.T) {
	p := writeFile(t, "registry:\n  grace_period: 1h\n")
	cfg, err := load(t, "", map[string]string{config.EnvConfig: p, config.EnvLandlordDSN: "postgres://x/y"})
	require.NoError(t, err)
	assert.Equal(t, time.Hour, cfg.Registry.GracePeriod.D())
	assert.Equal(t, p, cfg.File())
}

func TestEmptyFileMeansDefaults(t *testing.T) {
	for _, body := range []string{"", "\n# only a comment\n", "---\n"} {
		cfg, err := load(t, writeFile(t, body), map[string]string{config.EnvLandlordDSN: "postgres://x/y"})
		require.NoError(t, err, "%q", body)
		assert.Equal(t, config.Default().Registry, cfg.Registry)
	}
}

func TestInvalidConfigs(t *testing.T) {
	cases := []struct {
		file string
		want []string // every line must appear, in order
	}{
		{"invalid-yaml.yml", []string{"invalid-yaml.yml: invalid YAML: line 2: found unexpected end of stream"}},
		{"invalid-unknown-key.yml", []string{`invalid-unknown-key.yml:4: checks.registry_mising: unknown key (did you mean "registry_missing"?)`}},
		{"invalid-wrong-type.yml", []string{
			`invalid-wrong-type.yml:2: landlord.connect_timeout: invalid duration "5" (use a number with a unit, such as 30s, 15m or 4h)`,
			`invalid-wrong-type.yml:5: checks.field_mismatch.fields: expected a list, got "slug"`,
			`invalid-wrong-type.yml:6: checks.field_mismatch.enabled: expected true or false, got "maybe"`,
		}},
		{"invalid-env-unset.yml", []string{"invalid-env-unset.yml:2: landlord.dsn: environment variable TD_TEST_UNSET_VARIABLE is not set"}},
		{"invalid-values.yml", []string{
			`invalid-values.yml:2: registry.preset: unknown preset "tenancy-for-laravel" (use laravel, stancl, spatie or custom)`,
			`invalid-values.yml:3: registry.grace_period: invalid duration "15 minutes"`,
		}},
		{"invalid-custom-no-queries.yml", []string{
			"registry.tenants_query: preset custom needs a query returning id, slug",
			"registry.databases_query: preset custom needs a query returning id, tenant_id",
		}},
		{"invalid-dsn-both.yml", []string{"invalid-dsn-both.yml:3: landlord.dsn_file: set either landlord.dsn or landlord.dsn_file, not both"}},
		{"invalid-landlord-list.yml", []string{"invalid-landlord-list.yml:1: landlord: expected a mapping, got a list"}},
		{"invalid-two-documents.yml", []string{"more than one YAML document"}},
		{"invalid-fields.yml", []string{
			`invalid-fields.yml:3: checks.field_mismatch.fields[1]: "slug; DROP TABLE tenants" is not a column name`,
			`checks.field_mismatch.fields[2]: "slug" is listed twice`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			_, err := load(t, filepath.Join("testdata", tc.file), map[string]string{config.EnvLandlordDSN: "postgres://x/y"})
			require.Error(t, err)
			var cerr *config.Error
			require.True(t, errors.As(err, &cerr))
			msg := err.Error()
			pos := 0
			for _, w := range tc.want {
				i := strings.Index(msg[pos:], w)
				require.GreaterOrEqual(t, i, 0, "want %q in\n%s", w, msg)
				pos += i + len(w)
			}
			assert.NotContains(t, msg, "panic")
			assert.NotContains(t, msg, "goroutine")
		})
	}
}

func TestInvalidValuesAllReported(t *testing.T) {
	_, err := load(t, "testdata/invalid-values.yml", map[string]string{config.EnvLandlordDSN: "postgres://x/y"})
	require.Error(t, err)
	var cerr *config.Error
	require.True(t, errors.As(err, &cerr))
	var paths []string
	for _, pr := range cerr.Problems {
		paths = append(paths, fmt.Sprintf("%d:%s", pr.Line, pr.Path))
	}
	assert.Equal(t, []string{
		"2:registry.preset", "3:registry.grace_period", "4:registry.port", "5:registry.time_zone",
		"8:checks.registry_missing.severity", "10:checks.provisioning_stuck.statuses",
	}, paths)
}

func TestMissingFile(t *testing.T) {
	_, err := load(t, "testdata/does-not-exist.yml", nil)
	require.Error(t, err)
	assert.Equal(t, "testdata/does-not-exist.yml: cannot read config file: no such file", err.Error())
}

func TestSecretNeverPrints(t *testing.T) {
	const canary = "canary-Pa55w0rd-7f3a"
	cfg, err := load(t, "", map[string]string{config.EnvLandlordDSN: "postgres://u:" + canary + "@db/landlord"})
	require.NoError(t, err)
	for _, s := range []string{
		fmt.Sprint(cfg.Landlord), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg.Landlord), cfg.Landlord.DSN.String(),
	} {
		assert.NotContains(t, s, canary)
	}
	b, err := cfg.Landlord.DSN.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "<redacted>", string(b))
}

func TestNoPanicOnOddYAML(t *testing.T) {
	inputs := []string{
		"[1, 2, 3]", "42", "landlord: &a {dsn: x}\nregistry: *a\n", "checks: {field_mismatch: {fields: [[a]]}}",
		"landlord:\n  dsn: {a: b}\n", "? [a]\n: b\n", "checks:\n  <<: {x: 1}\n", "registry:\n  port: 1e400\n",
		"registry:\n  excluded_statuses: [~, null]\n", "landlord:\n  dsn: ${\n", "landlord:\n  dsn: ${1BAD}\n",
		"registry:\n  preset: laravel\n  preset: custom\n",
	}
	for _, in := range inputs {
		assert.NotPanics(t, func() {
			_, _ = load(t, writeFile(t, in), map[string]string{config.EnvLandlordDSN: "postgres://x/y"})
		}, in)
	}
}

func TestSlack(t *testing.T) {
	const token = "xoxb-canary-4242"
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	landlordEnv := map[string]string{config.EnvLandlordDSN: "postgres://localhost/landlord"}
	emptyFile := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(emptyFile, []byte("\n"), 0o600))
	withToken := map[string]string{config.EnvLandlordDSN: "postgres://localhost/landlord", config.EnvSlackToken: token}
	cases := []struct {
		name    string
		body    string
		env     map[string]string
		enabled bool
		errs    []string
	}{
		{name: "off by default", body: "", env: landlordEnv},
		{name: "token from env", body: "slack:\n  channel: '#alerts'\n", env: withToken, enabled: true},
		{name: "token from file", body: "slack:\n  channel: '#alerts'\n  token_file: " + tokenFile + "\n", env: landlordEnv, enabled: true},
		{name: "token needs channel", body: "slack:\n  token: ${TOK}\n", env: map[string]string{config.EnvLandlordDSN: "postgres://localhost/landlord", "TOK": token},
			errs: []string{"slack.channel: must be set"}},
		{name: "token and token_file", body: "slack:\n  channel: c\n  token: a\n  token_file: " + tokenFile + "\n", env: landlordEnv,
			errs: []string{"slack.token_file: set either slack.token or slack.token_file, not both"}},
		{name: "bad values", body: `
slack:
  channel: c
  channels: {critical: "#crit", urgent: "#x"}
  storm_threshold: 0
  max_tenants_per_message: -1
  min_severity: loud
  api_url: ftp://x
`, env: withToken, errs: []string{
			`slack.channels.urgent: unknown severity "urgent"`, "slack.storm_threshold: must be at least 1",
			"slack.max_tenants_per_message: must be at least 1", `slack.min_severity: unknown severity "loud"`,
			"slack.api_url: must be an http(s) URL"}},
		{name: "unknown key", body: "slack:\n  webhok_url: x\n", env: landlordEnv, errs: []string{"slack.webhok_url"}},
		{name: "webhook not a URL", body: "slack:\n  webhook_url: ${HOOK}\n", env: map[string]string{config.EnvLandlordDSN: "postgres://localhost/landlord", "HOOK": "xoxb-canary-4242"},
			errs: []string{"slack.webhook_url: must be an http(s) URL (the value is not shown"}},
		{name: "token and webhook", body: "slack:\n  channel: c\n", env: map[string]string{config.EnvLandlordDSN: "postgres://localhost/landlord", config.EnvSlackToken: token,
			config.EnvSlackWebhook: "https://hooks.example/" + token}, errs: []string{"slack.webhook_url: a bot token and a webhook URL are both set"}},
		{name: "empty token file", body: "slack:\n  channel: c\n  token_file: " + emptyFile + "\n", env: landlordEnv,
			errs: []string{"slack.token_file: " + emptyFile + " is empty"}},
		{name: "literal token", body: "slack:\n  channel: c\n  token: " + token + "\n", env: landlordEnv,
			errs: []string{"slack.token: write the bot token as a reference, ${SLACK_BOT_TOKEN} (or another variable), or use slack.token_file"}},
		{name: "literal token as a default", body: "slack:\n  channel: c\n  token: ${NOPE:-" + token + "}\n", env: landlordEnv,
			errs: []string{"slack.token: write the bot token as a reference"}},
		{name: "literal webhook", body: "slack:\n  webhook_url: https://hooks.example/" + token + "\n", env: landlordEnv,
			errs: []string{"slack.webhook_url: write the webhook URL as a reference"}},
		{name: "bad repeat and degraded", body: "slack:\n  channel: c\n  repeat_interval: -1h\n  degraded_after: 0\n", env: withToken,
			errs: []string{"slack.repeat_interval: must not be negative", "slack.degraded_after: must be at least 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, writeFile(t, tc.body), tc.env)
			if len(tc.errs) > 0 {
				require.Error(t, err)
				for _, e := range tc.errs {
					assert.Contains(t, err.Error(), e)
				}
				assert.NotContains(t, err.Error(), token)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.enabled, cfg.Slack.Enabled())
			if tc.enabled {
				assert.Equal(t, token, cfg.Slack.Token.Reveal())
				assert.NotContains(t, fmt.Sprintf("%+v", cfg), token)
			}
			assert.Equal(t, 50, cfg.Slack.StormThreshold)
			assert.Equal(t, 10, cfg.Slack.MaxTenantsPerMessage)
			assert.Equal(t, config.SeverityInfo, cfg.Slack.MinSeverity)
		})
	}

	hook := "https://hooks.example/services/T0/B0/" + token
	cfg, err := load(t, "", map[string]string{config.EnvLandlordDSN: "postgres://localhost/landlord", config.EnvSlackWebhook: hook})
	require.NoError(t, err, "a webhook needs no channel")
	assert.True(t, cfg.Slack.Enabled())
	assert.True(t, cfg.Slack.Webhook())
	assert.Equal(t, hook, cfg.Slack.WebhookURL.Reveal())
	assert.Equal(t, 4*time.Hour, cfg.Slack.RepeatInterval.D())
	assert.Equal(t, 3, cfg.Slack.DegradedAfter)
	assert.NotContains(t, fmt.Sprintf("%+v %v", cfg, cfg.Slack), token)

	cfg, err = load(t, writeFile(t, "slack:\n  channel: '#all'\n  channels: {critical: '#crit'}\n"), withToken)
	require.NoError(t, err)
	assert.Equal(t, "#crit", cfg.Slack.ChannelFor(config.SeverityCritical))
	assert.Equal(t, "#all", cfg.Slack.ChannelFor(config.SeverityWarning))
}

func TestRepair(t *testing.T) {
	const pw = "canary-tenant-pw-7731"
	base := map[string]string{config.EnvLandlordDSN: "postgres://localhost/landlord"}
	withKey := map[string]string{config.EnvLandlordDSN: "postgres://localhost/landlord",
		config.EnvAppKey: "base64:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "PW": pw}

	cfg, err := load(t, "", base)
	require.NoError(t, err)
	r := cfg.Repair
	assert.False(t, r.Enabled, "repair is off unless switched on")
	assert.Equal(t, 10, r.MaxRepairsPerRun)
	assert.InDelta(t, 0.2, r.BreakerRatio, 1e-9)
	assert.Equal(t, config.ModePlan, r.ModeOf(config.CheckRegistryMissing))
	assert.Equal(t, config.ModePlan, r.ModeOf(config.CheckFieldMismatch))
	assert.Equal(t, config.ModePlan, r.ModeOf(config.CheckCredentialPlaintext))
	assert.Equal(t, config.ModeOff, r.ModeOf(config.CheckProvisioningStuck))
	assert.Equal(t, config.ModeOff, r.ModeOf(config.CheckRegistryDuplicate), "duplicates need a human")

	cfg, err = load(t, writeFile(t, `
repair:
  enabled: true
  actions:
    registry_missing: {mode: apply, host: db2, password: "${PW}"}
    field_mismatch: {mode: apply, source_of_truth: {slug: tenants, database_name: tenant_databases}}
`), withKey)
	require.NoError(t, err)
	assert.Equal(t, pw, cfg.Repair.Actions.RegistryMissing.Password.Reveal())
	assert.NotContains(t, fmt.Sprintf("%+v", cfg), pw)

	_, err = load(t, writeFile(t, `
repair:
  max_repairs_per_run: -1
  breaker_ratio: 1.5
  actions:
    registry_missing: {mode: fix, port: 0, username: "{{tenant}}_u", status: ""}
    field_mismatch: {mode: apply, source_of_truth: {slug: landlord, status: tenants}}
    credential_plaintext: {mode: apply}
    provisioning_stuck: {mode: apply, set_status: provisioning}
`), base)
	require.Error(t, err)
	for _, want := range []string{
		"repair.max_repairs_per_run: must not be negative",
		"repair.breaker_ratio: must be a share of tenants above 0 and at most 1",
		`repair.actions.registry_missing.mode: unknown mode "fix"`,
		"repair.actions.registry_missing.port: must be a TCP port",
		"repair.actions.registry_missing.username: unknown placeholder {{tenant}}",
		"repair.actions.registry_missing.status: must not be empty",
		`repair.actions.field_mismatch.source_of_truth.slug: unknown source of truth "landlord"`,
		`repair.actions.field_mismatch.source_of_truth.status: field "status" is not compared`,
		"repair.actions.credential_plaintext.mode: mode apply needs an APP_KEY",
		`repair.actions.provisioning_stuck.set_status: "provisioning" is itself a provisioning status`,
	} {
		assert.Contains(t, err.Error(), want)
	}

	_, err = load(t, writeFile(t, "registry: {preset: spatie}\nstate: {dsn: \"postgres://u:state-pw@db/state\"}\nrepair:\n  enabled: true\n  actions:\n    credential_plaintext: {mode: apply}\n"), withKey)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "repair.enabled: repair writes the laravel preset's tables only; registry.preset is spatie")
	assert.Contains(t, err.Error(), "repair.enabled: repairs commit together with their audit-log row")
	assert.NotContains(t, err.Error(), "state-pw")

	_, err = load(t, writeFile(t, "repair:\n  actions:\n    registry_missing: {mode: apply}\n"), withKey)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "repair.actions.registry_missing.password: mode apply needs the tenant databases' password")
}

func TestTenantFilter(t *testing.T) {
	all := config.TenantFilter{}
	assert.True(t, all.Allows("id1", "acme"))
	f := config.TenantFilter{Allow: []string{"acme", "id2"}, Deny: []string{"id1"}}
	assert.False(t, f.Allows("id1", "acme"), "deny wins")
	assert.True(t, f.Allows("id2", "globex"))
	assert.False(t, f.Allows("id3", "initech"))
	assert.False(t, config.TenantFilter{Allow: []string{""}}.Allows("", ""), "an empty entry matches nothing")
	assert.Equal(t, "acme_user@tenant_acme/id9", config.ExpandTenant("{{slug}}_user@{{database_name}}/{{ id }}", "id9", "acme", "tenant_acme"))
}

func TestValidateCatchesWhatServeWouldRefuse(t *testing.T) {
	const pw = "canary-dsn-pw-1234"
	_, err := load(t, writeFile(t, "server:\n  listen: 9788\nstate:\n  dsn: \"postgres://u:"+pw+"@h:notaport/db\"\n"),
		map[string]string{config.EnvLandlordDSN: "postgres://u:" + pw + "@h/db?sslmode=bogus"})
	require.Error(t, err)
	for _, want := range []string{
		`server.listen: "9788" is not an address with a port`,
		"landlord.dsn: not a valid PostgreSQL connection string",
		"state.dsn: not a valid PostgreSQL connection string",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), pw)
}
