// Package notify turns tenantdrift's findings into Slack messages and
// delivers them.
//
// Rendering is pure: NewFindings, Resolved, ResolvedReply, Reminder, Storm,
// Degraded and Recovered build a Message (Block Kit blocks plus the
// notification text) from findings and never fail. Every message fits
// Slack's limits whatever the input (MaxBlocks blocks, MaxSectionText
// characters per text), and registry values are escaped so that a slug
// cannot format, link or mention anything.
//
// Client delivers a Message through the Web API (post, reply in a thread,
// edit) or an incoming webhook, pacing each channel, honouring Slack's
// rate limits and retrying what is safe to retry. A post that may have
// reached Slack is never sent twice: it fails with an *UncertainError.
package notify

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/tenantdrift/tenantdrift/internal/state"
)

// Message is one rendered Slack message: the blocks and the plain
// notification text that Slack shows where blocks cannot be (push
// notifications, screen readers). Its JSON is what the renderers' golden
// files hold.
type Message struct {
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks"`
}

// DefaultMaxTenants is how many findings a message lists by default.
const DefaultMaxTenants = 10

// DefaultRunbookURL is the runbook link template; {{check}} becomes the
// check name.
const DefaultRunbookURL = "https://github.com/tenantdrift/tenantdrift/blob/main/docs/runbook.md#{{check}}"

// RenderOptions are the rendering settings. The zero value is usable.
type RenderOptions struct {
	// MaxTenants is how many findings a message lists before "…and N
	// more"; DefaultMaxTenants when not positive. Slack's limits may list
	// fewer.
	MaxTenants int
	// RunbookURL and DashboardURL are link templates in which {{check}}
	// is replaced by the check name (path-escaped). RunbookURL defaults to
	// DefaultRunbookURL; no dashboard link is shown when DashboardURL is
	// empty.
	RunbookURL   string
	DashboardURL string
}

func (o RenderOptions) maxTenants() int {
	if o.MaxTenants <= 0 {
		return DefaultMaxTenants
	}
	return o.MaxTenants
}

// link renders a mrkdwn link from template tmpl for checkName; "" when
// tmpl is empty. Characters that would end the link token are
// percent-encoded.
func link(tmpl, checkName, label string) string {
	if tmpl == "" {
		return ""
	}
	u := strings.ReplaceAll(tmpl, "{{check}}", url.PathEscape(checkName))
	u = strings.NewReplacer("<", "%3C", ">", "%3E", "|", "%7C", " ", "%20").Replace(clean(u))
	return "<" + u + "|" + label + ">"
}

func (o RenderOptions) links(checkName string) string {
	parts := []string{link(cmp.Or(o.RunbookURL, DefaultRunbookURL), checkName, ":book: Runbook")}
	if d := link(o.DashboardURL, checkName, ":bar_chart: Dashboard"); d != "" {
		parts = append(parts, d)
	}
	return strings.Join(parts, "  ·  ")
}

// finish bounds a message to Slack's limits.
func finish(text string, blocks []slack.Block) Message {
	return Message{Text: truncate(text, maxFallbackText), Blocks: limitBlocks(blocks)}
}

// who names a finding's tenant: slug, id and database, whichever are set.
func who(f state.Finding) string {
	var parts []string
	if f.TenantSlug != "" {
		parts = append(parts, "*"+code(f.TenantSlug, maxSlug)+"*")
	}
	if f.TenantID != "" {
		parts = append(parts, "id "+code(f.TenantID, maxID))
	}
	if f.DatabaseName != "" {
		parts = append(parts, "db "+code(f.DatabaseName, maxName))
	}
	if len(parts) == 0 {
		return "_no tenant_"
	}
	return strings.Join(parts, " · ")
}

// what says what is wrong: expected against actual for a field, otherwise
// the reason and any values.
func what(f state.Finding) string {
	values := func() string {
		switch {
		case f.Expected != "" && f.Actual != "", f.Field != "":
			return "expected " + code(f.Expected, maxValue) + ", actual " + code(f.Actual, maxValue)
		case f.Actual != "":
			return code(f.Actual, maxValue)
		case f.Expected != "":
			return "expected " + code(f.Expected, maxValue)
		}
		return ""
	}()
	label := f.Field
	if label == "" {
		label = f.Reason
	}
	switch {
	case label != "" && values != "":
		return code(label, maxReason) + ": " + values
	case label != "":
		return code(label, maxReason)
	}
	return values
}

// findingLine is one finding: who on the first line, what and when on the
// second.
func findingLine(f state.Finding, when string) string {
	detail := strings.Join(slices.DeleteFunc([]string{what(f), when}, func(s string) bool { return s == "" }), " · ")
	return "• " + who(f) + "\n      " + detail
}

func firstSeen(f state.Finding) string { return "first seen " + slackDate(f.FirstSeen) }

// tenantCount counts distinct tenants (by id, else slug) among fs.
func tenantCount(fs []state.Finding) int {
	seen := make(map[string]struct{}, len(fs))
	for _, f := range fs {
		k := f.TenantID
		if k == "" {
			k = "\x00" + f.TenantSlug + "\x00" + f.Fingerprint
		}
		seen[k] = struct{}{}
	}
	return len(seen)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func affected(fs []state.Finding) string {
	t := tenantCount(fs)
	s := plural(t, "tenant", "tenants")
	if len(fs) != t {
		s += " (" + plural(len(fs), "finding", "findings") + ")"
	}
	return s
}

// listFindings renders up to limit findings as sections within budget
// blocks, followed by "…and N more" when some are left out.
func listFindings(fs []state.Finding, limit, budget int, when func(state.Finding) string) []slack.Block {
	n := min(limit, len(fs))
	lines := make([]string, n)
	for i, f := range fs[:n] {
		lines[i] = findingLine(f, when(f))
	}
	blocks, used := pack(lines, "\n", budget-1)
	if more := len(fs) - used; more > 0 {
		blocks = append(blocks, contextBlock(fmt.Sprintf("…and %d more", more)))
	}
	return blocks
}

// NewFindings renders the message for one run of check checkName that
// found new findings of the given severity: what is wrong, for how many
// tenants, what it breaks for users, up to opts.MaxTenants of them with
// what is wrong and when it was first seen, and links to the runbook and
// dashboard.
func NewFindings(checkName, severity string, findings []state.Finding, opts RenderOptions) Message {
	emoji := severityEmoji(severity)
	blocks := []slack.Block{
		header(fmt.Sprintf("%s %s: %s", emoji, checkName, title(checkName))),
		section(summary(emoji, checkName, severity, findings)),
		slack.NewDividerBlock(),
	}
	blocks = append(blocks, listFindings(findings, opts.maxTenants(), MaxBlocks-len(blocks)-1, firstSeen)...)
	blocks = append(blocks, contextBlock(opts.links(checkName)))
	text := fmt.Sprintf("%s [%s] %s: %s, %s", emoji, plain(severity, maxReason), plain(checkName, maxReason),
		title(checkName), affected(findings))
	return finish(escape(text, maxFallbackText), blocks)
}

func summary(emoji, checkName, severity string, findings []state.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s *%s* · %s · check %s", emoji, escape(severity, maxReason), affected(findings), code(checkName, maxReason))
	if i := impact(checkName); i != "" {
		fmt.Fprintf(&b, "\n*What it breaks for users:* %s", i)
	}
	return b.String()
}

// Resolved renders the edit of a NewFindings message once all of its
// findings are resolved: marked resolved, with when (the latest
// ResolvedAt among findings) and how long the drift lasted (from the
// earliest FirstSeen).
func Resolved(checkName, severity string, findings []state.Finding, opts RenderOptions) Message {
	var first, last time.Time
	for _, f := range findings {
		if first.IsZero() || (!f.FirstSeen.IsZero() && f.FirstSeen.Before(first)) {
			first = f.FirstSeen
		}
		if f.ResolvedAt != nil && f.ResolvedAt.After(last) {
			last = *f.ResolvedAt
		}
	}
	status := ":white_check_mark: *Resolved*"
	if !last.IsZero() {
		status += " " + slackDate(last)
		if !first.IsZero() {
			status += ", after " + FormatDuration(last.Sub(first))
		}
	}
	blocks := []slack.Block{
		header(fmt.Sprintf(":white_check_mark: Resolved: %s: %s", checkName, title(checkName))),
		section(fmt.Sprintf("%s · was %s *%s* · %s · check %s", status, severityEmoji(severity),
			escape(severity, maxReason), affected(findings), code(checkName, maxReason))),
		slack.NewDividerBlock(),
	}
	blocks = append(blocks, listFindings(findings, opts.maxTenants(), MaxBlocks-len(blocks)-1, func(f state.Finding) string {
		if f.ResolvedAt == nil {
			return firstSeen(f)
		}
		return firstSeen(f) + " · resolved " + slackDate(*f.ResolvedAt)
	})...)
	blocks = append(blocks, contextBlock(opts.links(checkName)))
	text := fmt.Sprintf("Resolved: %s: %s, %s", plain(checkName, maxReason), title(checkName), affected(findings))
	return finish(escape(text, maxFallbackText), blocks)
}

// ResolvedReply renders the thread reply for one finding resolved after
// it had been open for after.
func ResolvedReply(f state.Finding, after time.Duration) Message {
	line := fmt.Sprintf(":white_check_mark: %s resolved after %s", who(f), FormatDuration(after))
	if w := what(f); w != "" {
		line += "\n      was " + w
	}
	name := f.TenantSlug
	if name == "" {
		name = cmp.Or(f.TenantID, f.DatabaseName, "finding")
	}
	text := escape(fmt.Sprintf("Resolved after %s: %s", FormatDuration(after), cutRunes(clean(name), maxSlug)), maxFallbackText)
	return finish(text, []slack.Block{section(line)})
}

// Reminder renders the thread reply for findings that are still open at
// now (the caller picks them: critical ones, say), each with how long it
// has been open.
func Reminder(checkName string, findings []state.Finding, now time.Time, opts RenderOptions) Message {
	var oldest time.Duration
	for _, f := range findings {
		if !f.FirstSeen.IsZero() {
			oldest = max(oldest, now.Sub(f.FirstSeen))
		}
	}
	// The title too: a reminder through a webhook is not in a thread.
	head := fmt.Sprintf(":alarm_clock: *Still open: %s* — %s, the oldest for %s", escape(title(checkName), 200), affected(findings), FormatDuration(oldest))
	blocks := []slack.Block{section(head)}
	blocks = append(blocks, listFindings(findings, opts.maxTenants(), MaxBlocks-len(blocks), func(f state.Finding) string {
		if f.FirstSeen.IsZero() {
			return ""
		}
		return "open for " + FormatDuration(now.Sub(f.FirstSeen))
	})...)
	text := fmt.Sprintf("Still open: %s — %s, the oldest for %s", title(checkName), affected(findings), FormatDuration(oldest))
	return finish(text, blocks)
}

// maxStormReasons is how many reasons a storm line lists per check.
const maxStormReasons = 10

// Storm renders one summary in place of many NewFindings messages: total
// new findings, and counts per check (largest first) and, within each,
// per reason. counts maps check name to reason to count.
func Storm(counts map[string]map[string]int, total int, opts RenderOptions) Message {
	type checkCount struct {
		name string
		n    int
	}
	checks := make([]checkCount, 0, len(counts))
	for name, reasons := range counts {
		n := 0
		for _, c := range reasons {
			n += c
		}
		checks = append(checks, checkCount{name, n})
	}
	slices.SortFunc(checks, func(a, b checkCount) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.name, b.name)) })

	lines := make([]string, len(checks))
	for i, c := range checks {
		reasons := slices.SortedFunc(maps.Keys(counts[c.name]), func(a, b string) int {
			return cmp.Or(cmp.Compare(counts[c.name][b], counts[c.name][a]), strings.Compare(a, b))
		})
		var parts []string
		for _, r := range reasons[:min(len(reasons), maxStormReasons)] {
			label := r
			if label == "" {
				label = "(no reason)"
			}
			parts = append(parts, fmt.Sprintf("%s %d", code(label, maxReason), counts[c.name][r]))
		}
		if len(reasons) > maxStormReasons {
			parts = append(parts, fmt.Sprintf("and %d more reasons", len(reasons)-maxStormReasons))
		}
		lines[i] = fmt.Sprintf("• *%s* %d: %s  %s", code(c.name, maxReason), c.n, strings.Join(parts, ", "),
			link(cmp.Or(opts.RunbookURL, DefaultRunbookURL), c.name, "runbook"))
	}

	head := fmt.Sprintf(":rotating_light: %s across %s: too many to list one by one.", plural(total, "new finding", "new findings"),
		plural(len(checks), "check", "checks"))
	blocks := []slack.Block{
		header(fmt.Sprintf(":rotating_light: Drift storm: %d new findings", total)),
		section(head),
	}
	budget := MaxBlocks - len(blocks) - 2
	list, used := pack(lines, "\n", budget)
	blocks = append(blocks, list...)
	if more := len(lines) - used; more > 0 {
		blocks = append(blocks, contextBlock("…and "+plural(more, "more check", "more checks")))
	}
	if d := link(opts.DashboardURL, "", ":bar_chart: Dashboard"); d != "" {
		blocks = append(blocks, contextBlock(d))
	}
	text := fmt.Sprintf("Drift storm: %s across %s", plural(total, "new finding", "new findings"), plural(len(checks), "check", "checks"))
	return finish(text, blocks)
}

// Degraded renders the message that the auditor itself is unhealthy
// (state store down, checks failing), with reason as free text.
func Degraded(reason string) Message {
	line := ":warning: *tenantdrift is degraded:* " + escape(reason, maxFree) +
		"\nFindings may be missing or stale until it recovers."
	return finish(":warning: tenantdrift is degraded: "+escape(reason, maxFree), []slack.Block{section(line)})
}

// Recovered renders the message that the auditor is healthy again after
// having been degraded for after.
func Recovered(after time.Duration) Message {
	line := ":white_check_mark: *tenantdrift recovered* after " + FormatDuration(after) + " degraded."
	return finish(":white_check_mark: tenantdrift recovered after "+FormatDuration(after), []slack.Block{section(line)})
}

// Repaired renders one repair run: the actions applied and those that
// failed or met a conflict, or why nothing was applied (breaker), and how
// many wait for the next run (deferred).
func Repaired(repairs []PayloadRepair, breaker string, deferred int, opts RenderOptions) Message {
	count := map[string]int{}
	for _, r := range repairs {
		count[r.Status]++
	}
	var head, text string
	switch {
	case breaker != "":
		head = ":octagonal_sign: *tenantdrift applied no repair:* " + escape(breaker, maxFree)
		text = ":octagonal_sign: tenantdrift applied no repair: " + escape(breaker, maxFree)
	case count["failed"]+count["conflict"] > 0:
		head = fmt.Sprintf(":wrench: *tenantdrift repaired %s*, %d failed, %d conflict", plural(count["applied"], "finding", "findings"), count["failed"], count["conflict"])
		text = strings.NewReplacer("*", "").Replace(head)
	default:
		head = fmt.Sprintf(":wrench: *tenantdrift repaired %s*", plural(count["applied"], "finding", "findings"))
		text = strings.NewReplacer("*", "").Replace(head)
	}
	if deferred > 0 {
		head += fmt.Sprintf("\n%s wait for the next run (max_repairs_per_run).", plural(deferred, "repair", "repairs"))
	}
	blocks := []slack.Block{section(head)}
	var lines []string
	for _, r := range repairs {
		who := r.TenantSlug
		if who == "" {
			who = r.TenantID
		}
		line := fmt.Sprintf("• `%s` %s *%s* · %s.%s", escape(r.Action, 64), escape(r.Status, 16), code(who, 200),
			escape(r.Table, 200), escape(r.Column, 200))
		if r.Reason != "" {
			line += "\n      " + escape(r.Reason, 500)
		}
		lines = append(lines, line)
	}
	limit := opts.maxTenants()
	shown := lines[:min(len(lines), limit)]
	more, _ := pack(shown, "\n", MaxBlocks-len(blocks)-1)
	blocks = append(blocks, more...)
	if len(lines) > limit {
		blocks = append(blocks, contextBlock(fmt.Sprintf("…and %d more in tenantdrift.repairs", len(lines)-limit)))
	}
	blocks = append(blocks, contextBlock(opts.links("repairs")))
	return finish(text, limitBlocks(blocks))
}
