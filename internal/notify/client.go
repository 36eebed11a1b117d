package notify

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/tenantdrift/tenantdrift/internal/redact"
)

// Client defaults.
const (
	// DefaultTimeout bounds one HTTP request to Slack (slack-go's default
	// client has no timeout).
	DefaultTimeout = 10 * time.Second
	// DefaultMaxAttempts is how many times a request is tried in all.
	DefaultMaxAttempts = 4
	// DefaultBackoff is the wait before the first retry; it doubles each
	// retry, up to maxBackoff.
	DefaultBackoff = time.Second
	// DefaultChannelInterval is the least time between two requests to
	// one channel: Slack allows about one message per second per channel.
	DefaultChannelInterval = time.Second

	maxBackoff = 30 * time.Second
	// defaultRetryAfter is the wait after a 429 without Retry-After.
	defaultRetryAfter = time.Second
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// APIURL is the Web API base URL; slack.APIURL when empty. Tests
	// point it at a fake.
	APIURL string
	// HTTPClient makes the requests; it is copied, and given
	// DefaultTimeout when its Timeout is zero. nil means a new client.
	HTTPClient *http.Client
	// Logger hears about retries; nil discards.
	Logger *slog.Logger
	// Redactor, when set, learns the token and every webhook URL the
	// client is given (so the process's logs mask them too); the client
	// scrubs its errors with it. nil means a private one.
	Redactor *redact.Redactor
	// MaxAttempts is how many times a request is tried in all;
	// DefaultMaxAttempts when not positive.
	MaxAttempts int
	// Backoff is the first retry's wait; DefaultBackoff when not
	// positive.
	Backoff time.Duration
	// ChannelInterval is the least time between requests to one channel
	// (or one webhook); DefaultChannelInterval when zero, none when
	// negative.
	ChannelInterval time.Duration
	// Now and Sleep are the clock, for tests; time.Now and a
	// context-aware sleep when nil. Sleep must return ctx's error when
	// ctx is done first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client delivers Messages to Slack. It is safe for concurrent use.
//
// Every method paces requests per channel, waits out a rate limit
// (Retry-After) and retries with exponential backoff, up to MaxAttempts
// in all, what is safe to retry: anything that failed before the request
// was sent; for Update and AuthTest, which are harmless to repeat, also
// server errors and timeouts. A post (Post, Reply, Webhook) that failed
// after it was sent, without Slack saying it was refused, fails with an
// *UncertainError and is not retried. Other failures are an *Error; both
// are classified by Reason.
type Client struct {
	api      *slack.Client
	http     *http.Client
	log      *slog.Logger
	red      *redact.Redactor
	attempts int
	backoff  time.Duration
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	limit    *limiter
}

// New returns a client that authenticates with token (a bot token,
// xoxb-…). It does not contact Slack; see AuthTest.
func New(token string, opts Options) *Client {
	hc := &http.Client{}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient
		hc = &c
	}
	if hc.Timeout == 0 {
		hc.Timeout = DefaultTimeout
	}
	red := opts.Redactor
	if red == nil {
		red = &redact.Redactor{}
	}
	red.Add(token)
	apiURL := cmp.Or(opts.APIURL, slack.APIURL)
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	sleep := opts.Sleep
	if sleep == nil {
		sleep = sleepContext
	}
	interval := opts.ChannelInterval
	if interval == 0 {
		interval = DefaultChannelInterval
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	attempts := opts.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	backoff := opts.Backoff
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	return &Client{
		api:      slack.New(token, slack.OptionAPIURL(apiURL), slack.OptionHTTPClient(hc)),
		http:     hc,
		log:      log,
		red:      red,
		attempts: attempts,
		backoff:  backoff,
		now:      now,
		sleep:    sleep,
		limit:    &limiter{interval: max(interval, 0), now: now, sleep: sleep, next: map[string]time.Time{}},
	}
}

func msgOptions(m Message) []slack.MsgOption {
	return []slack.MsgOption{
		slack.MsgOptionText(m.Text, false), // already escaped by the renderers
		slack.MsgOptionBlocks(m.Blocks...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
	}
}

// Post posts m to channel (an ID, or a name the bot is in) and returns the
// message's timestamp, which Update and Reply take.
func (c *Client) Post(ctx context.Context, channel string, m Message) (ts string, err error) {
	err = c.do(ctx, "post", channel, false, func(ctx context.Context) error {
		_, ts, err = c.api.PostMessageContext(ctx, channel, msgOptions(m)...)
		return err
	})
	return ts, err
}

// Reply posts m in the thread of the message threadTS in channel and
// returns the reply's timestamp.
func (c *Client) Reply(ctx context.Context, channel, threadTS string, m Message) (ts string, err error) {
	err = c.do(ctx, "reply", channel, false, func(ctx context.Context) error {
		_, ts, err = c.api.PostMessageContext(ctx, channel, append(msgOptions(m), slack.MsgOptionTS(threadTS))...)
		return err
	})
	return ts, err
}

// Update replaces the message ts in channel with m. Repeating an update
// is harmless, so it is retried after server errors and timeouts too.
func (c *Client) Update(ctx context.Context, channel, ts string, m Message) error {
	return c.do(ctx, "update", channel, true, func(ctx context.Context) error {
		_, _, _, err := c.api.UpdateMessageContext(ctx, channel, ts, msgOptions(m)...)
		return err
	})
}

// AuthTest checks that the token is valid; an *Error with Reason "auth"
// when Slack refuses it.
func (c *Client) AuthTest(ctx context.Context) error {
	_, err := c.Identify(ctx)
	return err
}

// Webhook posts m to the incoming webhook at webhookURL, a secret that
// never appears in an error or log. Webhooks cannot thread or edit, and
// return no timestamp.
func (c *Client) Webhook(ctx context.Context, webhookURL string, m Message) error {
	c.red.Add(webhookURL)
	if u, err := url.Parse(webhookURL); err == nil && len(u.Path) > 1 {
		c.red.Add(u.Path, u.EscapedPath())
	}
	msg := &slack.WebhookMessage{Text: m.Text, Blocks: &slack.Blocks{BlockSet: m.Blocks}}
	return c.do(ctx, "webhook", "webhook\x00"+webhookURL, false, func(ctx context.Context) error {
		// PostWebhookContext would use http.DefaultClient, which has no
		// timeout; this is the same call with the client's.
		return slack.PostWebhookCustomHTTPContext(ctx, webhookURL, c.http, msg)
	})
}

// do runs call, one request, under the retry policy. key paces requests
// (a channel); idempotent says whether a request that may have been
// processed can be repeated.
func (c *Client) do(ctx context.Context, op, key string, idempotent bool, call func(context.Context) error) error {
	var (
		err    error
		reason string
		code   string
	)
	for attempt := 1; ; attempt++ {
		if werr := c.limit.wait(ctx, key); werr != nil {
			return c.fail(op, attempt, werr, err)
		}
		var sent atomic.Bool
		trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				sent.Store(true)
			}
		}}
		err = call(httptrace.WithClientTrace(ctx, trace))
		if err == nil {
			return nil
		}
		reason, code = classify(err)
		definite := reason == ReasonAuth || reason == ReasonChannelNotFound || reason == ReasonOther && code != ""
		if reason == ReasonRateLimited {
			// Slack refused the request without acting on it.
			wait := defaultRetryAfter
			var rl *slack.RateLimitedError
			if errors.As(err, &rl) && rl.RetryAfter > 0 {
				wait = rl.RetryAfter
			}
			until := c.now().Add(wait)
			if dl, ok := ctx.Deadline(); attempt >= c.attempts || ok && dl.Before(until) {
				return c.error(op, attempt, reason, code, err)
			}
			c.limit.hold(key, until)
			c.log.Warn("slack rate limited", "op", op, "attempt", attempt, "retry_after", wait)
			continue
		}
		if !idempotent && sent.Load() && !definite {
			return &UncertainError{Op: op, Err: c.scrub(err)}
		}
		if definite || ctx.Err() != nil || attempt >= c.attempts {
			return c.error(op, attempt, reason, code, err)
		}
		wait := min(c.backoff<<(attempt-1), maxBackoff)
		c.log.Warn("slack request failed, retrying", "op", op, "attempt", attempt, "reason", reason,
			"wait", wait, "err", c.scrub(err))
		if serr := c.sleep(ctx, wait); serr != nil {
			return c.fail(op, attempt, serr, err)
		}
	}
}

// fail reports that ctx ended (waitErr) before attempt could start; last
// is the previous attempt's error, if any.
func (c *Client) fail(op string, attempt int, waitErr, last error) error {
	if last != nil {
		reason, code := classify(last)
		return c.error(op, attempt-1, reason, code, errors.Join(waitErr, last))
	}
	reason, _ := classify(waitErr)
	return c.error(op, attempt-1, reason, "", waitErr)
}

func (c *Client) error(op string, attempts int, reason, code string, err error) *Error {
	return &Error{Op: op, Reason: reason, Code: c.red.String(code), Attempts: attempts, Err: c.scrub(err)}
}

// scrub returns err with the token and webhook URLs masked in its text.
func (c *Client) scrub(err error) error {
	ce := &cleanError{msg: c.red.String(err.Error())}
	var t interface{ Timeout() bool }
	ce.timeout = errors.As(err, &t) && t.Timeout()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		ce.ctxErr = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		ce.ctxErr = context.Canceled
	}
	return ce
}
