package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/notify"
	"github.com/tenantdrift/tenantdrift/internal/repair"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

// slackDeliveryInterval is how often serve's leader drains the outbox
// between runs (retries, items another replica left behind).
const slackDeliveryInterval = 10 * time.Second

// maxDeliveryRounds bounds how many batches one drain delivers.
const maxDeliveryRounds = 10

// notifier posts Slack alerts: plan decides them inside the transaction
// that records a run, deliver drains the state store's outbox.
type notifier struct {
	cfg    config.Slack
	client *notify.Client
	r      *runtime
	// metrics count deliveries; nil (audit) counts nothing.
	metrics *notify.Metrics
}

// newNotifier returns the notifier of cfg, or nil when Slack is not
// configured. With a webhook (cfg.Slack.Webhook()) the client has no
// token and every item goes to the webhook, as its own message.
func (r *runtime) newNotifier(cfg *config.Config) *notifier {
	if !cfg.Slack.Enabled() {
		return nil
	}
	client := notify.New(cfg.Slack.Token.Reveal(), notify.Options{
		APIURL: cfg.Slack.APIURL, Redactor: r.redactor, Logger: r.logger.With("component", "slack"),
	})
	return &notifier{cfg: cfg.Slack, client: client, r: r}
}

// plan returns the outbox plan of one run of checkName that finished at
// finished; nil when n is nil (no Slack).
func (n *notifier) plan(checkName string, finished time.Time) func(state.Transitions) []state.OutboxItem {
	if n == nil {
		return nil
	}
	opts := n.policy(finished)
	return func(t state.Transitions) []state.OutboxItem { return notify.Plan(checkName, t, opts) }
}

// planRuns returns the outbox plan of the runs of checks, recorded
// together, that finished at finished: one storm across them all. nil
// when n is nil (no Slack).
func (n *notifier) planRuns(checks []string, finished time.Time) func([]state.Transitions) []state.OutboxItem {
	if n == nil {
		return nil
	}
	opts := n.policy(finished)
	return func(ts []state.Transitions) []state.OutboxItem {
		runs := make(map[string]state.Transitions, len(checks))
		for i, name := range checks {
			runs[name] = ts[i]
		}
		return notify.PlanRuns(runs, opts)
	}
}

func (n *notifier) policy(finished time.Time) notify.PolicyOptions {
	return notify.PolicyOptions{
		MinSeverity: n.cfg.MinSeverity, StormThreshold: n.cfg.StormThreshold, Channels: n.cfg.Channels,
		RunTime: finished, RepeatInterval: n.cfg.RepeatInterval.D(),
	}
}

// deliver drains the due items of store's outbox, a few batches at most;
// now is the store's clock. Failed deliveries are logged by the
// Deliverer; the store's errors are returned.
func (n *notifier) deliver(ctx context.Context, store *state.Store, now func() time.Time) error {
	var webhook string
	if n.cfg.Webhook() {
		webhook = n.cfg.WebhookURL.Reveal()
	}
	d := notify.NewDeliverer(n.client, store, notify.DelivererOptions{
		Channel:    n.cfg.Channel,
		WebhookURL: webhook,
		Render: notify.RenderOptions{
			MaxTenants: n.cfg.MaxTenantsPerMessage, RunbookURL: n.cfg.RunbookURL, DashboardURL: n.cfg.DashboardURL,
		},
		Logger:  n.r.logger.With("component", "slack"),
		Metrics: n.metrics,
		Now:     now,
	})
	for range maxDeliveryRounds {
		sent, failed, err := d.DeliverOnce(ctx)
		if sent+failed > 0 {
			n.r.logger.Info("slack notifications delivered", "sent", sent, "failed", failed)
		}
		if err != nil || sent+failed == 0 {
			return errors.Join(err, n.countPending(ctx, store))
		}
	}
	return n.countPending(ctx, store)
}

// countPending sets tenantdrift_slack_outbox_pending, when there are
// metrics.
func (n *notifier) countPending(ctx context.Context, store *state.Store) error {
	if n.metrics == nil {
		return nil
	}
	pending, err := store.OutboxPending(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // shutting down: the gauge dies with the process
		}
		return err
	}
	n.metrics.SetPending(pending)
	return nil
}

// Outcomes of postDirect, as RecordDelivered takes them; "" when the
// message did not reach Slack and should go through the outbox later.
const (
	directSent      = "sent"
	directUncertain = "uncertain"
)

// postDirect posts it straight to Slack, bypassing the outbox, for when
// the state store is unreachable: best effort, with the Client's retries.
// It returns how it ended, the message's timestamp and the error's text.
func (n *notifier) postDirect(ctx context.Context, it state.OutboxItem) (outcome, ts, reason string) {
	payload, err := json.Marshal(it.Payload)
	if err != nil {
		return "", "", err.Error()
	}
	msg, err := notify.Render(it.Kind, it.Check, payload, notify.RenderOptions{})
	if err != nil {
		return "", "", err.Error()
	}
	if n.cfg.Webhook() {
		err = n.client.Webhook(ctx, n.cfg.WebhookURL.Reveal(), msg)
	} else {
		ts, err = n.client.Post(ctx, cmp.Or(it.Channel, n.cfg.Channel), msg)
	}
	var ue *notify.UncertainError
	switch {
	case err == nil:
		n.metrics.Observe(it.Kind, notify.ResultSent)
		return directSent, ts, ""
	case errors.As(err, &ue):
		n.metrics.Observe(it.Kind, notify.ResultUncertain)
		return directUncertain, "", err.Error()
	}
	n.metrics.Observe(it.Kind, notify.ResultRetry)
	return "", "", err.Error()
}

// announceRepairs enqueues the Slack message of one repair run into
// store's outbox: what it wrote, what failed or met a conflict, or why
// the breaker applied nothing. A run that only planned says nothing. No-op
// when n is nil (no Slack).
func (n *notifier) announceRepairs(ctx context.Context, store *state.Store, rep *repair.Report) error {
	if n == nil || rep == nil {
		return nil
	}
	var items []notify.PayloadRepair
	deferred := 0
	for _, a := range rep.Actions {
		switch a.Status {
		case repair.StatusApplied, repair.StatusFailed, repair.StatusConflict:
			items = append(items, notify.PayloadRepair{Action: a.Action, Check: a.Check, TenantID: a.TenantID,
				TenantSlug: a.TenantSlug, Table: a.Table, Column: a.Column, Status: a.Status, Reason: a.Reason})
		case repair.StatusSkipped:
			deferred++
		}
	}
	if len(items) == 0 && rep.Breaker == "" {
		return nil
	}
	sev := config.SeverityInfo
	if rep.Breaker != "" || slices.ContainsFunc(items, func(p notify.PayloadRepair) bool { return p.Status != repair.StatusApplied }) {
		sev = config.SeverityWarning
	}
	// min_severity mutes findings, not repairs: a write to the landlord is
	// always announced.
	if rep.Breaker != "" {
		items, deferred = nil, 0 // nothing was applied; the reason says why
	}
	for i := range items {
		items[i].Reason = n.r.redactor.String(items[i].Reason)
	}
	return store.Enqueue(ctx, state.OutboxItem{Kind: state.KindRepair, Channel: n.cfg.ChannelFor(sev),
		Payload: notify.Payload{Repairs: items, Reason: rep.Breaker, Total: deferred}})
}

// repairNews remembers, per check, the failures and conflicts the daemon
// announced and whether the breaker was open, so that a repair that keeps
// failing, or a breaker that stays open, is announced once, not every run.
// It lives in the process: a restart announces them once more.
type repairNews struct {
	mu      sync.Mutex
	failing map[string]map[string]bool // check -> action/tenant/status/reason
	breaker map[string]bool            // "" -> breaker open at the last repair run
}

// filter returns the part of rep worth announcing for check: every applied
// repair, failures and conflicts not announced before, and an open breaker
// when it was closed at the check's last run. nil when nothing is new.
func (n *repairNews) filter(checkName string, rep *repair.Report) *repair.Report {
	if rep == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failing == nil {
		n.failing, n.breaker = map[string]map[string]bool{}, map[string]bool{}
	}
	// The breaker weighs all checks at once: one announcement per
	// opening, whichever check's run saw it first.
	wasOpen := n.breaker[""]
	n.breaker[""] = rep.Breaker != ""
	out := &repair.Report{Applying: rep.Applying, Unrepairable: rep.Unrepairable}
	if rep.Breaker != "" && !wasOpen {
		out.Breaker = rep.Breaker
	}
	seen := map[string]bool{}
	for _, a := range rep.Actions {
		switch a.Status {
		case repair.StatusApplied, repair.StatusSkipped:
			out.Actions = append(out.Actions, a)
		case repair.StatusFailed, repair.StatusConflict:
			key := a.Action + "\x00" + a.TenantID + "\x00" + a.Status + "\x00" + a.Reason
			seen[key] = true
			if !n.failing[checkName][key] {
				out.Actions = append(out.Actions, a)
			}
		}
	}
	n.failing[checkName] = seen
	return out
}
