package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantdrift/tenantdrift/checks"
	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/landlord"
	"github.com/tenantdrift/tenantdrift/internal/laravel"
	"github.com/tenantdrift/tenantdrift/internal/notify"
	"github.com/tenantdrift/tenantdrift/internal/state"
	"github.com/tenantdrift/tenantdrift/internal/tenant"
)

// doctorTimeout bounds each of doctor's checks.
const doctorTimeout = 30 * time.Second

// samplePasswordsSQL lists stored passwords, newest tenants first: the
// APP_KEY check decrypts the first one that looks encrypted.
const samplePasswordsSQL = `
SELECT coalesce(t.slug, d.slug, ''), d.password
FROM registry_databases AS d
JOIN registry_tenants AS t ON t.id = d.tenant_id
WHERE d.password IS NOT NULL AND d.password <> ''
ORDER BY t.created_at DESC NULLS LAST, 1
LIMIT 100`

// Statuses of a doctor line.
const (
	doctorOK   = "ok"
	doctorFail = "FAIL"
	doctorSkip = "skip"
)

func runDoctor(ctx context.Context, r *runtime, args []string) int {
	var lf logFlags
	var file string
	var postTest bool
	fs := r.newFlagSet("doctor", "doctor [--config FILE] [--post-test]", &lf)
	fs.StringVar(&file, "config", "", "config file (env TENANTDRIFT_CONFIG)")
	fs.BoolVar(&postTest, "post-test", false, "also post a visible test message to every configured Slack channel (or the webhook)")
	if code, ok := r.parse(fs, &lf, args); !ok {
		return code
	}
	cfg, ok := r.loadConfig("doctor", file, false)
	if !ok {
		fmt.Fprintf(r.stdout, "%-4s  config: invalid, see the problems above\n", doctorFail)
		return ExitError
	}
	d := &doctor{r: r, cfg: cfg, w: r.stdout, postTest: postTest}
	return d.run(ctx)
}

// doctor checks, one line each, that a configuration can work: the
// landlord, the state store, the APP_KEY and Slack. It only reads, except
// that Slack access is checked with a scheduled message it deletes (and
// --post-test posts).
type doctor struct {
	r        *runtime
	cfg      *config.Config
	w        io.Writer
	postTest bool
	failed   bool
}

// line prints one result.
func (d *doctor) line(status, what, format string, args ...any) {
	if status == doctorFail {
		d.failed = true
	}
	fmt.Fprintf(d.w, "%-4s  %s: %s\n", status, what, fmt.Sprintf(format, args...))
}

func (d *doctor) run(ctx context.Context) int {
	src := cmp.Or(d.cfg.File(), "defaults (no config file)")
	d.line(doctorOK, "config", "%s is valid", src)

	pool, reg := d.landlord(ctx)
	if pool != nil {
		defer pool.Close()
	}
	d.state(ctx, pool)
	d.appKey(ctx, pool, reg)
	d.slack(ctx)
	if d.failed {
		return ExitError
	}
	return ExitOK
}

// landlord connects and resolves the registry; both are nil when it
// cannot.
func (d *doctor) landlord(ctx context.Context) (*pgxpool.Pool, *tenant.Registry) {
	if d.cfg.Landlord.DSN == "" {
		d.line(doctorFail, "landlord", "no DSN: set %s or landlord.dsn (or landlord.dsn_file)", config.EnvLandlordDSN)
		d.line(doctorSkip, "registry", "no landlord")
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	pool, err := landlord.Connect(ctx, d.cfg.Landlord, d.cfg.Registry.TimeZone)
	if err != nil {
		d.line(doctorFail, "landlord", "%v", err)
		d.line(doctorSkip, "registry", "no landlord")
		return nil, nil
	}
	cc := pool.Config().ConnConfig
	version := "version unknown"
	if err := pool.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&version); err == nil {
		version, _, _ = strings.Cut(version, " ") // "15.18 (Debian 15.18-0+deb12u1)"
	}
	d.line(doctorOK, "landlord", "connected to %s as %s (PostgreSQL %s)", landlord.Target(cc.Config), cc.User, version)

	reg, err := tenant.Resolve(ctx, pool, d.cfg.Registry, d.cfg.Checks.FieldMismatch.Fields)
	if err != nil {
		d.line(doctorFail, "registry", "layout %s: %v", d.cfg.Registry.Preset, landlord.Describe(err))
		return pool, nil
	}
	n, err := reg.Count(ctx, pool)
	if err != nil {
		d.line(doctorFail, "registry", "layout %s resolved, but %v", reg.Preset(), landlord.Describe(err))
		return pool, nil
	}
	d.line(doctorOK, "registry", "layout %s, %d tenants", reg.Preset(), n)
	return pool, reg
}

// state reads the state schema's version, in the state database or the
// landlord's (lp, nil when unreachable).
func (d *doctor) state(ctx context.Context, lp *pgxpool.Pool) {
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	schema := cmp.Or(d.cfg.State.Schema, state.DefaultSchema)
	where, pool := "in the landlord database", lp
	if d.cfg.State.DSN != "" {
		sc := config.Landlord{DSN: d.cfg.State.DSN, ConnectTimeout: d.cfg.Landlord.ConnectTimeout, StatementTimeout: d.cfg.Landlord.StatementTimeout}
		sp, err := landlord.Connect(ctx, sc, "UTC")
		if err != nil {
			d.line(doctorFail, "state store", "state.dsn: %v", err)
			return
		}
		defer sp.Close()
		where, pool = "at "+landlord.Target(sp.Config().ConnConfig.Config), sp
	}
	if pool == nil {
		d.line(doctorSkip, "state store", "in the landlord database, which doctor could not reach")
		return
	}
	use := "serve records history there"
	if d.cfg.State.Configured() {
		use = "serve and audit record history there"
	}
	cur, known, err := state.SchemaVersion(ctx, pool, schema)
	switch {
	case err != nil:
		d.line(doctorFail, "state store", "%s, schema %s: %v", where, schema, landlord.Describe(err))
	case cur == 0:
		d.line(doctorOK, "state store", "%s, schema %s not created yet: the first run creates it (the role needs CREATE on the database, or an existing empty schema); %s", where, schema, use)
	case cur > known:
		d.line(doctorFail, "state store", "%s, schema %s: %v", where, schema, &state.SchemaTooNewError{Schema: schema, Version: cur, Known: known})
	case cur < known:
		d.line(doctorOK, "state store", "%s, schema %s at version %d; the next run migrates it to %d; %s", where, schema, cur, known, use)
	default:
		d.line(doctorOK, "state store", "%s, schema %s at version %d (current); %s", where, schema, cur, use)
	}
}

// appKey decrypts one stored password with the configured keys.
func (d *doctor) appKey(ctx context.Context, pool *pgxpool.Pool, reg *tenant.Registry) {
	const what = "APP_KEY"
	if !d.cfg.Laravel.HasKey() {
		d.line(doctorSkip, what, "no key configured (laravel.app_key, laravel.app_key_file or APP_KEY): credential_undecryptable and db_unreachable will not run")
		return
	}
	creds, err := checks.CredentialsFor(d.cfg)
	if err != nil {
		d.line(doctorFail, what, "%v", err)
		return
	}
	if !creds.Encrypted {
		d.line(doctorSkip, what, "the %s layout stores database passwords as given; nothing to decrypt", d.cfg.Registry.Preset)
		return
	}
	if reg == nil {
		d.line(doctorSkip, what, "key parsed (%s), but no registry to sample a password from", d.cfg.Laravel.Cipher)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	sql, args := reg.Query(samplePasswordsSQL, nil)
	rows, err := pool.Query(ctx, sql, args)
	if err != nil {
		d.line(doctorFail, what, "read stored passwords: %v", landlord.Describe(err))
		return
	}
	defer rows.Close()
	// The first password that decrypts proves the key; one that does not
	// may be drift of its own (credential_undecryptable), so a few more
	// are tried before the key is blamed.
	var good, bad string // tenant slugs
	var reason laravel.Reason
	var undecryptable, plaintext int
	for rows.Next() && good == "" && undecryptable < 5 {
		var slug, stored string
		if err := rows.Scan(&slug, &stored); err != nil {
			d.line(doctorFail, what, "read stored passwords: %v", err)
			return
		}
		switch r, clear := creds.Usable(stored); {
		case clear:
			plaintext++
		case r == "":
			good = slug
		default:
			if bad == "" {
				bad, reason = slug, r
			}
			undecryptable++
		}
	}
	if err := rows.Err(); err != nil {
		d.line(doctorFail, what, "read stored passwords: %v", landlord.Describe(err))
		return
	}
	switch {
	case good != "" && undecryptable > 0:
		d.line(doctorOK, what, "decrypts the stored password of tenant %s (%s); %d other sampled password(s) do not (tenant %s: %s), see credential_undecryptable",
			good, d.cfg.Laravel.Cipher, undecryptable, bad, reason)
	case good != "":
		d.line(doctorOK, what, "decrypts the stored password of tenant %s (%s)", good, d.cfg.Laravel.Cipher)
	case undecryptable > 0:
		d.line(doctorFail, what, "cannot decrypt the stored password of tenant %s (nor %d other sampled): %s: %s", bad, undecryptable-1, reason, keyHint(reason))
	case plaintext > 0:
		d.line(doctorSkip, what, "no encrypted password to sample: the %d stored passwords read are plaintext (credential_plaintext reports them)", plaintext)
	default:
		d.line(doctorSkip, what, "no stored password to sample: the registry has none")
	}
}

// keyHint says what to do about a password that does not decrypt.
func keyHint(r laravel.Reason) string {
	switch r {
	case laravel.ReasonMACInvalid:
		return "the key is not the one that encrypted it; use the application's APP_KEY, and list earlier keys in APP_PREVIOUS_KEYS (laravel.previous_keys) after a rotation"
	case laravel.ReasonPayloadInvalid:
		return "the value is not a payload for this cipher or format; check laravel.cipher and laravel.password_format"
	case laravel.ReasonKeyInvalid:
		return "the key does not fit the cipher; check laravel.cipher"
	}
	return "see credential_undecryptable in the runbook"
}

// slack checks the token and every channel, or says what it cannot check
// of a webhook.
func (d *doctor) slack(ctx context.Context) {
	s := d.cfg.Slack
	if !s.Enabled() {
		d.line(doctorSkip, "slack", "not configured (slack.token or SLACK_BOT_TOKEN, or slack.webhook_url)")
		return
	}
	// A handful of requests: no per-channel pacing (rate limits are still
	// waited out).
	client := notify.New(s.Token.Reveal(), notify.Options{
		APIURL: s.APIURL, Redactor: d.r.redactor, Logger: d.r.logger.With("component", "slack"), ChannelInterval: -1,
	})
	msg := notify.DoctorMessage(d.r.env.Version)
	if s.Webhook() {
		if !d.postTest {
			d.line(doctorSkip, "slack webhook", "an incoming webhook cannot be checked without posting; run doctor --post-test to post a visible test message")
			return
		}
		wctx, cancel := context.WithTimeout(ctx, doctorTimeout)
		defer cancel()
		if err := client.Webhook(wctx, s.WebhookURL.Reveal(), msg); err != nil {
			d.line(doctorFail, "slack webhook", "test message not posted: %v", err)
			return
		}
		d.line(doctorOK, "slack webhook", "test message posted; check that it arrived in the channel")
		return
	}

	actx, cancel := context.WithTimeout(ctx, doctorTimeout)
	id, err := client.Identify(actx)
	cancel()
	if err != nil {
		d.line(doctorFail, "slack token", "%s%s", slackProblem(err), slackHint(err, ""))
		d.line(doctorSkip, "slack channels", "no valid token")
		return
	}
	d.line(doctorOK, "slack token", "workspace %s, bot %s (%s)", id.Team, id.User, id.UserID)
	for _, ch := range slackChannels(s) {
		what := "slack channel " + ch.name + " (" + strings.Join(ch.uses, ", ") + ")"
		cctx, cancel := context.WithTimeout(ctx, doctorTimeout)
		err := client.CanPost(cctx, ch.name, msg)
		if err != nil {
			cancel()
			d.line(doctorFail, what, "%s%s", slackProblem(err), slackHint(err, id.User))
			continue
		}
		if !d.postTest {
			cancel()
			d.line(doctorOK, what, "the bot can post (checked with a scheduled message, deleted at once)")
			continue
		}
		ts, err := client.Post(cctx, ch.name, msg)
		cancel()
		if err != nil {
			d.line(doctorFail, what, "the bot can post, but the test message was not posted: %v", err)
			continue
		}
		d.line(doctorOK, what, "test message posted (ts %s)", ts)
	}
}

// slackChannel is one distinct channel and what it is configured for.
type slackChannel struct {
	name string
	uses []string // "default", "critical", …
}

// slackChannels lists the default channel and the per-severity ones,
// each once, most severe first.
func slackChannels(s config.Slack) []slackChannel {
	var out []slackChannel
	add := func(name, use string) {
		if name == "" {
			return
		}
		for i := range out {
			if out[i].name == name {
				out[i].uses = append(out[i].uses, use)
				return
			}
		}
		out = append(out, slackChannel{name: name, uses: []string{use}})
	}
	add(s.Channel, "default")
	sevs := make([]string, 0, len(s.Channels))
	for sev := range s.Channels {
		sevs = append(sevs, sev)
	}
	slices.SortFunc(sevs, func(a, b string) int { return cmp.Compare(check.Rank(b), check.Rank(a)) })
	for _, sev := range sevs {
		add(s.Channels[sev], sev)
	}
	return out
}

// slackProblem is what Slack said: its own error code when it answered
// with one, else the client's error.
func slackProblem(err error) string {
	var e *notify.Error
	if errors.As(err, &e) && e.Code != "" && !strings.ContainsAny(e.Code, " ") {
		if _, numeric := strconv.Atoi(e.Code); numeric != nil {
			return "Slack answered " + e.Code
		}
	}
	return err.Error()
}

// slackHint says how to fix a Slack error, after its text; bot is the
// bot's user name, when known.
func slackHint(err error, bot string) string {
	var e *notify.Error
	if !errors.As(err, &e) {
		return ""
	}
	if bot == "" {
		bot = "the-bot"
	}
	switch e.Code {
	case "not_in_channel":
		return " — invite the bot to the channel (/invite @" + bot + "), or add the bot scope chat:write.public and reinstall the app"
	case "channel_not_found":
		return " — check the name (or use the channel ID); a private channel needs the bot invited"
	case "is_archived":
		return " — the channel is archived: unarchive it or configure another"
	case "missing_scope":
		return " — add the bot token scope chat:write under OAuth & Permissions and reinstall the app"
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive":
		return " — the token is not valid: copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions again"
	case "not_allowed_token_type":
		return " — use the bot token (xoxb-…), not a user or app-level token"
	}
	return ""
}
