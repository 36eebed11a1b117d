package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

// Outbox is the durable queue a Deliverer drains; *state.Store is one.
//
// ClaimOutbox leases due items; StartDelivery, called just before an
// item's request, reports whether the lease still holds and lets a later
// claim see that the request may have been made (OutboxEntry.Interrupted);
// one of MarkSent, MarkUncertain, MarkRetry and MarkFailed records how it
// ended. ThreadTS and SaveThread map a thread key to its original message.
type Outbox interface {
	ClaimOutbox(ctx context.Context, limit int) ([]state.OutboxEntry, error)
	StartDelivery(ctx context.Context, id int64, attempt int) (bool, error)
	MarkSent(ctx context.Context, id int64, ts string) error
	MarkUncertain(ctx context.Context, id int64, reason string) error
	MarkRetry(ctx context.Context, id int64, reason string, at time.Time) error
	MarkFailed(ctx context.Context, id int64, reason string) error
	ThreadTS(ctx context.Context, threadKey string) (channel, ts string, ok bool, err error)
	SaveThread(ctx context.Context, threadKey, channel, ts, checkName string, postedAt time.Time) error
}

// Payload is the JSON an outbox item's message is rendered from: the
// renderers' inputs, never rendered blocks, never secrets. Which fields
// each kind reads (the item's Check names the check):
//
//   - new_findings: Severity, Findings (the new or reopened findings, with
//     FirstSeen). Posted; the message is saved under the item's ThreadKey.
//   - resolved_reply: Findings (resolved, with FirstSeen and ResolvedAt);
//     one finding renders as ResolvedReply, several as Resolved. Posted in
//     the thread of ThreadKey.
//   - resolved_edit: Severity, Findings (all of the original message's,
//     resolved). Replaces the message saved under ThreadKey.
//   - reminder: Findings (still open), At (the time open durations are
//     measured to). Posted in the thread of ThreadKey.
//   - storm: Counts (check → reason → new findings), Total. Posted.
//   - degraded: Reason (free text, no secrets). Posted.
//   - recovered: AfterSeconds (how long tenantdrift was degraded). Posted.
//   - repair: Repairs (what one repair run wrote, or could not), Reason
//     (why nothing was applied: the breaker), Total (actions held back
//     for the next run). Posted.
//
// A reply or a reminder whose original message is unknown (never posted,
// uncertain, failed) is posted as a new message instead, a resolved_reply
// then as the standalone Resolved message, which names the check. An edit
// whose original is unknown is marked sent without a request (counted as
// skipped): the resolved_reply of the same resolution is already its own
// message.
//
// Through an incoming webhook (DelivererOptions.WebhookURL), which cannot
// thread or edit, every item is its own message: a resolved_reply renders
// as the standalone Resolved message (the check's title, the findings and
// when they resolved), a reminder as usual, and a resolved_edit is marked
// sent without a request (counted as skipped in the metrics), since the
// resolved_reply of the same resolution already says it.
type Payload struct {
	Severity     string                    `json:"severity,omitempty"`
	Findings     []PayloadFinding          `json:"findings,omitempty"`
	At           time.Time                 `json:"at,omitzero"`
	Counts       map[string]map[string]int `json:"counts,omitempty"`
	Total        int                       `json:"total,omitempty"`
	Reason       string                    `json:"reason,omitempty"`
	AfterSeconds int64                     `json:"after_seconds,omitempty"`
	Repairs      []PayloadRepair           `json:"repairs,omitempty"`
}

// PayloadFinding is what a message shows of a finding.
type PayloadFinding struct {
	Fingerprint  string     `json:"fingerprint"`
	Severity     string     `json:"severity,omitempty"`
	TenantID     string     `json:"tenant_id,omitempty"`
	TenantSlug   string     `json:"tenant_slug,omitempty"`
	DatabaseName string     `json:"database_name,omitempty"`
	Field        string     `json:"field,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	Expected     string     `json:"expected,omitempty"`
	Actual       string     `json:"actual,omitempty"`
	FirstSeen    time.Time  `json:"first_seen,omitzero"`
	ResolvedAt   *time.Time `json:"resolved_at,omitempty"`
}

// PayloadRepair is what a message shows of a repair action: never a
// value, masked or not.
type PayloadRepair struct {
	Action     string `json:"action"`
	Check      string `json:"check"`
	TenantID   string `json:"tenant_id,omitempty"`
	TenantSlug string `json:"tenant_slug,omitempty"`
	Table      string `json:"table,omitempty"`
	Column     string `json:"column,omitempty"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
}

// PayloadFindings returns what a payload holds of fs.
func PayloadFindings(fs []state.Finding) []PayloadFinding {
	out := make([]PayloadFinding, len(fs))
	for i, f := range fs {
		out[i] = PayloadFinding{
			Fingerprint: f.Fingerprint, Severity: f.Severity, TenantID: f.TenantID, TenantSlug: f.TenantSlug,
			DatabaseName: f.DatabaseName, Field: f.Field, Reason: f.Reason, Expected: f.Expected, Actual: f.Actual,
			FirstSeen: f.FirstSeen, ResolvedAt: f.ResolvedAt,
		}
	}
	return out
}

func (p Payload) findings(checkName string) []state.Finding {
	out := make([]state.Finding, len(p.Findings))
	for i, f := range p.Findings {
		out[i] = state.Finding{
			Finding: check.Finding{Check: checkName, Severity: f.Severity, TenantID: f.TenantID,
				TenantSlug: f.TenantSlug, DatabaseName: f.DatabaseName, Field: f.Field, Reason: f.Reason,
				Expected: f.Expected, Actual: f.Actual, Fingerprint: f.Fingerprint},
			FirstSeen: f.FirstSeen, LastSeen: f.FirstSeen, ResolvedAt: f.ResolvedAt,
		}
	}
	return out
}

// Deliverer defaults.
const (
	// DefaultBatch is how many items DeliverOnce claims.
	DefaultBatch = 20
	// DefaultDeliveryAttempts is how many times an item is claimed before a
	// retryable failure becomes final.
	DefaultDeliveryAttempts = 10
	// DefaultRetryBackoff is the wait before an item's first retry; it
	// doubles each retry, up to maxRetryBackoff.
	DefaultRetryBackoff = 30 * time.Second

	maxRetryBackoff = time.Hour
	// markTimeout bounds recording an outcome after ctx has ended: the
	// outcome of a request that was made is recorded even on shutdown.
	markTimeout = 5 * time.Second
)

// DelivererOptions configure a Deliverer. The zero value is usable but
// for Channel.
type DelivererOptions struct {
	// Channel is where items without a channel of their own go.
	Channel string
	// WebhookURL, when set, is the incoming webhook every item is posted
	// to instead of the Web API; Channel and items' channels are then
	// ignored (a webhook posts to its own channel). It is a secret: the
	// Client redacts it, and it is never stored.
	WebhookURL string
	// Render are the rendering settings.
	Render RenderOptions
	// Batch is how many items DeliverOnce claims; DefaultBatch when not
	// positive.
	Batch int
	// MaxAttempts is how many claims an item gets before a retryable
	// failure is final; DefaultDeliveryAttempts when not positive.
	MaxAttempts int
	// Backoff is the wait before an item's first retry;
	// DefaultRetryBackoff when not positive.
	Backoff time.Duration
	// Logger hears about each failed delivery; nil discards.
	Logger *slog.Logger
	// Metrics count each item's outcome; nil counts nothing.
	Metrics *Metrics
	// Now is the clock retries are scheduled by; time.Now when nil. Use
	// the store's.
	Now func() time.Time
}

// Deliverer delivers the outbox's items to Slack through a Client. A
// message that may have reached Slack is never posted again: it is marked
// uncertain, both when the Client says so and when an earlier delivery was
// interrupted mid-request (a crash, a lapsed lease).
type Deliverer struct {
	client *Client
	outbox Outbox
	opts   DelivererOptions
	log    *slog.Logger
	now    func() time.Time
}

// NewDeliverer returns a Deliverer draining outbox through client.
func NewDeliverer(client *Client, outbox Outbox, opts DelivererOptions) *Deliverer {
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultDeliveryAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultRetryBackoff
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Deliverer{client: client, outbox: outbox, opts: opts, log: log, now: now}
}

// outcome of one item.
type outcome int

const (
	outcomeSkipped outcome = iota // lease lost or store error: the item comes back
	outcomeSent
	outcomeDone // nothing to send: marked sent without a request
	outcomeRetry
	outcomeUncertain // may have been delivered: final
	outcomeFailed    // final
)

// DeliverOnce claims one batch of due items and delivers each in order. It
// returns how many were sent (or done without a request: an edit with
// nothing to edit) and how many ended failed or uncertain (items to retry
// count in neither), and the store's errors, joined: an item
// whose outcome could not be recorded comes back after its lease and, if
// its request was made, is then marked uncertain.
func (d *Deliverer) DeliverOnce(ctx context.Context) (sent, failed int, err error) {
	entries, err := d.outbox.ClaimOutbox(ctx, d.opts.Batch)
	if err != nil {
		return 0, 0, fmt.Errorf("deliver notifications: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if ctx.Err() != nil {
			break // the rest come back after their lease
		}
		o, err := d.deliver(ctx, e)
		if err != nil {
			errs = append(errs, err)
		}
		switch o {
		case outcomeSent, outcomeDone:
			sent++
		case outcomeUncertain, outcomeFailed:
			failed++
		}
	}
	return sent, failed, errors.Join(errs...)
}

// op is how an item is delivered.
type op int

const (
	opPost op = iota
	opReply
	opEdit
)

// deliver delivers e and records the outcome.
func (d *Deliverer) deliver(ctx context.Context, e state.OutboxEntry) (outcome, error) {
	log := d.log.With("outbox_id", e.ID, "kind", e.Kind, "check", e.Check)
	if d.opts.WebhookURL != "" {
		return d.deliverWebhook(ctx, log, e)
	}
	msg, err := Render(e.Kind, e.Check, e.Payload, d.opts.Render)
	if err != nil {
		return d.mark(ctx, log, e, outcomeFailed, err.Error(), "")
	}

	how, channel, ts := opPost, cmp.Or(e.Channel, d.opts.Channel), ""
	if e.Kind == state.KindResolvedReply || e.Kind == state.KindReminder || e.Kind == state.KindResolvedEdit {
		ch, origTS, ok, err := d.outbox.ThreadTS(ctx, e.ThreadKey)
		if err != nil {
			return outcomeSkipped, fmt.Errorf("deliver outbox item %d: %w", e.ID, err)
		}
		switch {
		case ok:
			how, channel, ts = opReply, ch, origTS
			if e.Kind == state.KindResolvedEdit {
				how = opEdit
			}
		case e.Kind == state.KindResolvedEdit:
			// The resolved_reply of the same resolution is posted as a
			// new message already; a second would say the same.
			log.Info("original slack message unknown: nothing to edit, the resolution is its own message", "thread_key", e.ThreadKey)
			return d.mark(ctx, log, e, outcomeDone, "", "")
		default:
			log.Warn("original slack message unknown, posting a new message", "thread_key", e.ThreadKey)
			if e.Kind == state.KindResolvedReply {
				// Standalone, it must name its check: the Resolved
				// rendering, as through a webhook.
				if msg, err = Render(state.KindResolvedEdit, e.Check, e.Payload, d.opts.Render); err != nil {
					return d.mark(ctx, log, e, outcomeFailed, err.Error(), "")
				}
			}
		}
	}
	if channel == "" {
		return d.mark(ctx, log, e, outcomeFailed, "no channel: the item has none and no default is configured", "")
	}
	// An edit is harmless to repeat; a post is not.
	if o, ok, err := d.start(ctx, log, e, e.Interrupted && how != opEdit); !ok {
		return o, err
	}

	var newTS string
	switch how {
	case opPost:
		newTS, err = d.client.Post(ctx, channel, msg)
	case opReply:
		newTS, err = d.client.Reply(ctx, channel, ts, msg)
	case opEdit:
		err = d.client.Update(ctx, channel, ts, msg)
		newTS = ts
	}
	if err == nil {
		if e.Kind == state.KindNewFindings && e.ThreadKey != "" {
			// Before MarkSent: if this fails the item comes back
			// interrupted and is marked uncertain, never re-posted.
			mctx, cancel := markContext(ctx)
			err := d.outbox.SaveThread(mctx, e.ThreadKey, channel, newTS, e.Check, d.now())
			cancel()
			if err != nil {
				return outcomeSkipped, fmt.Errorf("deliver outbox item %d: %w", e.ID, err)
			}
		}
		return d.mark(ctx, log, e, outcomeSent, "", newTS)
	}

	return d.failed(ctx, log, e, err)
}

// deliverWebhook delivers e through the incoming webhook: every item is
// its own message, and there is no thread to save (see Payload).
func (d *Deliverer) deliverWebhook(ctx context.Context, log *slog.Logger, e state.OutboxEntry) (outcome, error) {
	if e.Kind == state.KindResolvedEdit {
		log.Debug("a webhook cannot edit a message: the resolution is its own message")
		return d.mark(ctx, log, e, outcomeDone, "", "")
	}
	kind := e.Kind
	if kind == state.KindResolvedReply {
		kind = state.KindResolvedEdit // the standalone Resolved rendering
	}
	msg, err := Render(kind, e.Check, e.Payload, d.opts.Render)
	if err != nil {
		return d.mark(ctx, log, e, outcomeFailed, err.Error(), "")
	}
	if o, ok, err := d.start(ctx, log, e, e.Interrupted); !ok {
		return o, err
	}
	if err := d.client.Webhook(ctx, d.opts.WebhookURL, msg); err != nil {
		return d.failed(ctx, log, e, err)
	}
	return d.mark(ctx, log, e, outcomeSent, "", "")
}

// failed records the outcome of e's request that failed with err, an
// error of the Client: uncertain, retry or failed.
func (d *Deliverer) failed(ctx context.Context, log *slog.Logger, e state.OutboxEntry, err error) (outcome, error) {
	var ue *UncertainError
	reason := Reason(err)
	switch {
	case errors.As(err, &ue):
		return d.mark(ctx, log, e, outcomeUncertain, err.Error(), "")
	case retryable(reason) && e.Attempts < d.opts.MaxAttempts:
		return d.mark(ctx, log, e, outcomeRetry, err.Error(), "")
	case ctx.Err() != nil:
		// Shutting down before the request was made: try again soon.
		return d.mark(ctx, log, e, outcomeRetry, err.Error(), "")
	}
	return d.mark(ctx, log, e, outcomeFailed, err.Error(), "")
}

// start records that e's request is about to be made and reports whether
// to make it: not when an earlier attempt may have posted it already
// (mayHavePosted: marked uncertain), nor when the lease was lost.
func (d *Deliverer) start(ctx context.Context, log *slog.Logger, e state.OutboxEntry, mayHavePosted bool) (outcome, bool, error) {
	if mayHavePosted {
		o, err := d.mark(ctx, log, e, outcomeUncertain,
			"an earlier delivery was interrupted after it started; the message may have been posted", "")
		return o, false, err
	}
	ok, err := d.outbox.StartDelivery(ctx, e.ID, e.Attempts)
	if err != nil {
		return outcomeSkipped, false, fmt.Errorf("deliver outbox item %d: %w", e.ID, err)
	}
	if !ok {
		log.Info("outbox lease lost, leaving the item to its next claim")
		return outcomeSkipped, false, nil
	}
	return 0, true, nil
}

func retryable(reason string) bool {
	switch reason {
	case ReasonRateLimited, ReasonServerError, ReasonNetwork, ReasonTimeout:
		return true
	}
	return false
}

// markContext is ctx without its cancellation, bounded by markTimeout.
func markContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
}

// mark records o for e.
func (d *Deliverer) mark(ctx context.Context, log *slog.Logger, e state.OutboxEntry, o outcome, reason, ts string) (outcome, error) {
	ctx, cancel := markContext(ctx)
	defer cancel()
	var (
		err    error
		result string
	)
	switch o {
	case outcomeSent:
		result = ResultSent
		err = d.outbox.MarkSent(ctx, e.ID, ts)
	case outcomeDone:
		result = ResultSkipped
		err = d.outbox.MarkSent(ctx, e.ID, "")
	case outcomeRetry:
		wait := min(d.opts.Backoff<<min(max(e.Attempts-1, 0), 20), maxRetryBackoff)
		log.Warn("slack delivery failed, will retry", "attempt", e.Attempts, "wait", wait, "err", reason)
		result = ResultRetry
		err = d.outbox.MarkRetry(ctx, e.ID, reason, d.now().Add(wait))
	case outcomeUncertain:
		log.Error("slack delivery uncertain, not retrying", "attempt", e.Attempts, "err", reason)
		result = ResultUncertain
		err = d.outbox.MarkUncertain(ctx, e.ID, reason)
	default:
		log.Error("slack delivery failed", "attempt", e.Attempts, "err", reason)
		result = ResultFailed
		err = d.outbox.MarkFailed(ctx, e.ID, reason)
	}
	if err != nil {
		return outcomeSkipped, fmt.Errorf("deliver outbox item %d: %w", e.ID, err)
	}
	d.opts.Metrics.Observe(e.Kind, result)
	return o, nil
}

// Render renders the message of an outbox item of kind about checkName
// from its payload (see Payload). It fails on an unknown kind or a payload
// that is not a Payload.
func Render(kind, checkName string, payload []byte, opts RenderOptions) (Message, error) {
	var p Payload
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &p); err != nil {
			return Message{}, fmt.Errorf("render %s: decode payload: %w", kind, err)
		}
	}
	fs := p.findings(checkName)
	switch kind {
	case state.KindNewFindings:
		return NewFindings(checkName, p.Severity, fs, opts), nil
	case state.KindResolvedReply:
		if len(fs) == 1 {
			var after time.Duration
			if fs[0].ResolvedAt != nil && !fs[0].FirstSeen.IsZero() {
				after = fs[0].ResolvedAt.Sub(fs[0].FirstSeen)
			}
			return ResolvedReply(fs[0], after), nil
		}
		return Resolved(checkName, p.Severity, fs, opts), nil
	case state.KindResolvedEdit:
		return Resolved(checkName, p.Severity, fs, opts), nil
	case state.KindReminder:
		return Reminder(checkName, fs, p.At, opts), nil
	case state.KindStorm:
		return Storm(p.Counts, p.Total, opts), nil
	case state.KindDegraded:
		return Degraded(p.Reason), nil
	case state.KindRecovered:
		return Recovered(time.Duration(p.AfterSeconds) * time.Second), nil
	case state.KindRepair:
		return Repaired(p.Repairs, p.Reason, p.Total, opts), nil
	}
	return Message{}, fmt.Errorf("render: unknown outbox kind %q", kind)
}
