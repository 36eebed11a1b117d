package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	canaryToken = "xoxb-CANARY-1234-token"
	canaryHook  = "/services/TCANARY/BCANARY/canaryhooksecret"
)

// request is one request the fake Slack received.
type request struct {
	Path string
	Form url.Values // form body without the token; nil for JSON bodies
	Body string     // raw body
	At   time.Time  // on the test's clock
}

// fakeSlack is an httptest.Server speaking the parts of the Slack Web API
// the client uses, plus an incoming webhook at canaryHook. respond, when
// set, may answer a request itself (returning true).
type fakeSlack struct {
	*httptest.Server
	clock   *fakeClock
	respond func(w http.ResponseWriter, r *http.Request, n int) bool

	mu    sync.Mutex
	reqs  []request
	token []string // the token of each Web API request
}

func newFakeSlack(t *testing.T, clock *fakeClock) *fakeSlack {
	f := &fakeSlack{clock: clock}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := request{Path: r.URL.Path, Body: string(body)}
	req.At = time.Now()
	if f.clock != nil {
		req.At = f.clock.Now()
	}
	f.mu.Lock()
	if strings.HasPrefix(r.URL.Path, "/api/") {
		form, _ := url.ParseQuery(string(body))
		f.token = append(f.token, form.Get("token"))
		form.Del("token")
		req.Form = form
	}
	f.reqs = append(f.reqs, req)
	n := len(f.reqs)
	f.mu.Unlock()
	if f.respond != nil && f.respond(w, r, n) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/chat.postMessage", "/api/chat.update":
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1795856400.%06d"}`, req.Form.Get("channel"), n)
	case "/api/auth.test":
		fmt.Fprint(w, `{"ok":true,"url":"https://example.slack.com/","team":"T","user":"tenantdrift","team_id":"T1","user_id":"U1"}`)
	case canaryHook:
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "ok")
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeSlack) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// fakeClock is the client's clock: Sleep advances it instantly.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	return nil
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// newClient returns a client of fake f on a fake clock, logging into log.
func newClient(f *fakeSlack, clock *fakeClock, log *bytes.Buffer, opts Options) *Client {
	opts.APIURL = f.URL + "/api/"
	if clock != nil {
		opts.Now, opts.Sleep = clock.Now, clock.Sleep
	}
	if log != nil {
		opts.Logger = slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return New(canaryToken, opts)
}

func status(code int, header ...string) func(http.ResponseWriter, *http.Request, int) bool {
	return func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprint(w, "<html>oops</html>")
		return true
	}
}

func apiError(code string) func(http.ResponseWriter, *http.Request, int) bool {
	return func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":false,"error":%q}`, code)
		return true
	}
}

func testMessage() Message {
	return NewFindings("registry_missing", "critical", missing(2), RenderOptions{})
}

func TestPostGolden(t *testing.T) {
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	c := newClient(f, clock, nil, Options{})
	ctx := t.Context()

	ts, err := c.Post(ctx, "C1", testMessage())
	require.NoError(t, err)
	assert.Equal(t, "1795856400.000001", ts)
	reply, err := c.Reply(ctx, "C1", ts, ResolvedReply(missing(1)[0], time.Hour))
	require.NoError(t, err)
	assert.NotEmpty(t, reply)
	require.NoError(t, c.Update(ctx, "C1", ts, Resolved("registry_missing", "critical", missing(2), RenderOptions{})))
	require.NoError(t, c.AuthTest(ctx))

	reqs := f.requests()
	require.Len(t, reqs, 4)
	assert.Equal(t, "/api/chat.postMessage", reqs[0].Path)
	assert.Equal(t, "/api/chat.postMessage", reqs[1].Path)
	assert.Equal(t, ts, reqs[1].Form.Get("thread_ts"), "a reply carries thread_ts")
	assert.Equal(t, "/api/chat.update", reqs[2].Path)
	assert.Equal(t, ts, reqs[2].Form.Get("ts"), "an update carries ts")
	assert.Empty(t, reqs[2].Form.Get("thread_ts"))
	assert.Equal(t, "/api/auth.test", reqs[3].Path)
	assert.Equal(t, []string{canaryToken, canaryToken, canaryToken, canaryToken}, f.token)

	posted := map[string]any{}
	for k := range reqs[0].Form {
		posted[k] = reqs[0].Form.Get(k)
	}
	var blocks any
	require.NoError(t, json.Unmarshal([]byte(reqs[0].Form.Get("blocks")), &blocks))
	posted["blocks"] = blocks
	golden(t, "post_request", posted)
}

func TestWebhookGolden(t *testing.T) {
	f := newFakeSlack(t, nil)
	c := newClient(f, &fakeClock{now: t0}, nil, Options{})
	require.NoError(t, c.Webhook(t.Context(), f.URL+canaryHook, Degraded("state store unreachable")))
	reqs := f.requests()
	require.Len(t, reqs, 1)
	var body any
	require.NoError(t, json.Unmarshal([]byte(reqs[0].Body), &body))
	golden(t, "webhook_request", body)
}

func TestRateLimited(t *testing.T) {
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	f.respond = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			return status(http.StatusTooManyRequests, "Retry-After", "1")(w, r, n)
		}
		return false
	}
	c := newClient(f, clock, nil, Options{})
	ts, err := c.Post(t.Context(), "C1", testMessage())
	require.NoError(t, err)
	assert.NotEmpty(t, ts)
	reqs := f.requests()
	require.Len(t, reqs, 2)
	assert.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), time.Second, "waited Retry-After")
}

func TestRateLimitedRealClock(t *testing.T) {
	f := newFakeSlack(t, nil)
	f.respond = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			return status(http.StatusTooManyRequests, "Retry-After", "1")(w, r, n)
		}
		return false
	}
	c := newClient(f, nil, nil, Options{})
	start := time.Now()
	_, err := c.Post(t.Context(), "C1", testMessage())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), time.Second)

	// A Retry-After beyond the deadline fails at once.
	f.respond = status(http.StatusTooManyRequests, "Retry-After", "30")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start = time.Now()
	_, err = c.Post(ctx, "C2", testMessage())
	require.Error(t, err)
	assert.Equal(t, ReasonRateLimited, Reason(err))
	assert.Less(t, time.Since(start), time.Second)
}

func TestServerError(t *testing.T) {
	tests := map[string]struct {
		call      func(context.Context, *Client) error
		requests  int
		reason    string
		uncertain bool
	}{
		"update retried": {
			call:     func(ctx context.Context, c *Client) error { return c.Update(ctx, "C1", "1.2", testMessage()) },
			requests: DefaultMaxAttempts, reason: ReasonServerError,
		},
		"auth.test retried": {
			call:     func(ctx context.Context, c *Client) error { return c.AuthTest(ctx) },
			requests: DefaultMaxAttempts, reason: ReasonServerError,
		},
		"post not re-posted": {
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Post(ctx, "C1", testMessage())
				return err
			},
			requests: 1, reason: ReasonUncertain, uncertain: true,
		},
		"reply not re-posted": {
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Reply(ctx, "C1", "1.2", testMessage())
				return err
			},
			requests: 1, reason: ReasonUncertain, uncertain: true,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			clock := &fakeClock{now: t0}
			f := newFakeSlack(t, clock)
			f.respond = status(http.StatusInternalServerError)
			c := newClient(f, clock, nil, Options{ChannelInterval: -1})
			err := tt.call(t.Context(), c)
			require.Error(t, err)
			assert.Len(t, f.requests(), tt.requests)
			assert.Equal(t, tt.reason, Reason(err))
			var ue *UncertainError
			assert.Equal(t, tt.uncertain, errors.As(err, &ue))
			if !tt.uncertain {
				var e *Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, "500", e.Code)
				assert.Equal(t, DefaultMaxAttempts, e.Attempts)
				assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, clock.slept(), "exponential backoff")
			}
		})
	}
}

func TestAPIErrors(t *testing.T) {
	tests := map[string]struct{ code, reason string }{
		"channel":   {"channel_not_found", ReasonChannelNotFound},
		"not in":    {"not_in_channel", ReasonChannelNotFound},
		"auth":      {"invalid_auth", ReasonAuth},
		"revoked":   {"token_revoked", ReasonAuth},
		"too long":  {"msg_too_long", ReasonOther},
		"ratelimit": {"ratelimited", ReasonRateLimited},
		"internal":  {"internal_error", ReasonUncertain},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			clock := &fakeClock{now: t0}
			f := newFakeSlack(t, clock)
			f.respond = apiError(tt.code)
			c := newClient(f, clock, nil, Options{ChannelInterval: -1})
			_, err := c.Post(t.Context(), "C1", testMessage())
			require.Error(t, err)
			assert.Equal(t, tt.reason, Reason(err), "%v", err)
			if tt.reason == ReasonAuth || tt.reason == ReasonChannelNotFound || tt.reason == ReasonOther {
				assert.Len(t, f.requests(), 1, "a refusal is not retried")
				var e *Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, tt.code, e.Code)
			}
		})
	}
}

// closedURL returns a URL nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

func TestNetworkErrorBeforeSendIsRetried(t *testing.T) {
	clock := &fakeClock{now: t0}
	c := New(canaryToken, Options{APIURL: closedURL(t) + "/api/", Now: clock.Now, Sleep: clock.Sleep})
	_, err := c.Post(t.Context(), "C1", testMessage())
	require.Error(t, err)
	assert.Equal(t, ReasonNetwork, Reason(err))
	var ue *UncertainError
	assert.False(t, errors.As(err, &ue), "nothing was sent")
	assert.Len(t, clock.slept(), DefaultMaxAttempts-1, "retried")
}

func TestDroppedConnectionAfterSend(t *testing.T) {
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	f.respond = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		conn, _, err := w.(http.Hijacker).Hijack()
		require.NoError(t, err)
		_ = conn.Close()
		return true
	}
	c := newClient(f, clock, nil, Options{ChannelInterval: -1})
	_, err := c.Post(t.Context(), "C1", testMessage())
	var ue *UncertainError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, ReasonUncertain, Reason(err))
	assert.Len(t, f.requests(), 1)

	err = c.Update(t.Context(), "C1", "1.2", testMessage())
	require.Error(t, err)
	assert.Equal(t, ReasonNetwork, Reason(err))
	assert.Len(t, f.requests(), 1+DefaultMaxAttempts, "an update is retried")
}

func TestServerNeverAnswers(t *testing.T) {
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	f.respond = func(_ http.ResponseWriter, r *http.Request, _ int) bool {
		<-r.Context().Done()
		return true
	}
	c := newClient(f, clock, nil, Options{HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}, MaxAttempts: 2})

	start := time.Now()
	_, err := c.Post(t.Context(), "C1", testMessage())
	var ue *UncertainError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, ReasonUncertain, Reason(err))
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Len(t, f.requests(), 1)

	start = time.Now()
	err = c.Update(t.Context(), "C1", "1.2", testMessage())
	require.Error(t, err)
	assert.Equal(t, ReasonTimeout, Reason(err))
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Len(t, f.requests(), 3)

	// The caller's deadline bounds everything, default timeout or not.
	c = newClient(f, nil, nil, Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.Post(ctx, "C1", testMessage())
	require.ErrorAs(t, err, &ue)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestDefaultTimeout(t *testing.T) {
	c := New(canaryToken, Options{})
	assert.Equal(t, DefaultTimeout, c.http.Timeout)
	c = New(canaryToken, Options{HTTPClient: &http.Client{}})
	assert.Equal(t, DefaultTimeout, c.http.Timeout)
	c = New(canaryToken, Options{HTTPClient: &http.Client{Timeout: time.Second}})
	assert.Equal(t, time.Second, c.http.Timeout)
}

func TestChannelPacing(t *testing.T) {
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	c := newClient(f, clock, nil, Options{})
	ctx := t.Context()

	_, err := c.Post(ctx, "C1", testMessage())
	require.NoError(t, err)
	_, err = c.Post(ctx, "C1", testMessage())
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{time.Second}, clock.slept())
	_, err = c.Post(ctx, "C2", testMessage())
	require.NoError(t, err)
	assert.Len(t, clock.slept(), 1, "another channel does not wait")

	reqs := f.requests()
	require.Len(t, reqs, 3)
	assert.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), time.Second)
	assert.Equal(t, reqs[1].At, reqs[2].At)
}

func TestChannelPacingConcurrent(t *testing.T) {
	f := newFakeSlack(t, nil)
	const interval = 50 * time.Millisecond
	c := newClient(f, nil, nil, Options{ChannelInterval: interval})
	start := time.Now()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			_, err := c.Post(t.Context(), "C1", testMessage())
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	reqs := f.requests()
	require.Len(t, reqs, 5)
	// Pacing is on the client's side and arrival times jitter (the first
	// request may arrive late), so measure from before the first send: the
	// fifth request cannot leave, let alone arrive, before four intervals.
	// Without pacing all five arrive within a few milliseconds.
	assert.GreaterOrEqual(t, reqs[len(reqs)-1].At.Sub(start), 4*interval)
}

func TestSecretsNeverLeak(t *testing.T) {
	clock := &fakeClock{now: t0}
	f := newFakeSlack(t, clock)
	var log bytes.Buffer
	c := newClient(f, clock, &log, Options{ChannelInterval: -1})
	ctx := t.Context()
	hook := f.URL + canaryHook

	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, err := c.Post(ctx, "C1", testMessage())
	collect(err)
	collect(c.Webhook(ctx, hook, testMessage()))
	for _, respond := range []func(http.ResponseWriter, *http.Request, int) bool{
		status(http.StatusInternalServerError), status(http.StatusNotFound), status(http.StatusForbidden),
		apiError("invalid_auth"), apiError(canaryToken),
	} {
		f.respond = respond
		_, err := c.Post(ctx, "C1", testMessage())
		collect(err)
		collect(c.Update(ctx, "C1", "1.2", testMessage()))
		collect(c.AuthTest(ctx))
		collect(c.Webhook(ctx, hook, testMessage()))
	}
	// Unreachable webhook: the URL is in the transport's error.
	collect(c.Webhook(ctx, closedURL(t)+canaryHook, testMessage()))
	// Unreachable API.
	down := New(canaryToken, Options{APIURL: closedURL(t) + "/api/", Now: clock.Now, Sleep: clock.Sleep,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	collect(down.AuthTest(ctx))

	require.NotEmpty(t, errs)
	require.NotEmpty(t, log.String(), "retries were logged")
	secrets := []string{canaryToken, "CANARY", "canaryhooksecret"}
	for _, err := range errs {
		for _, s := range secrets {
			assert.NotContains(t, err.Error(), s)
			assert.NotContains(t, fmt.Sprintf("%+v", err), s)
		}
		var ue *url.Error
		assert.False(t, errors.As(err, &ue), "a *url.Error would carry the URL")
	}
	for _, s := range secrets {
		assert.NotContains(t, log.String(), s)
	}
	for _, r := range f.requests() {
		for _, s := range secrets {
			if r.Form != nil {
				assert.NotContains(t, r.Form.Encode(), s, "request to %s", r.Path)
			} else {
				assert.NotContains(t, r.Body, s, "request to %s", r.Path)
			}
		}
	}
	assert.Contains(t, strings.Join(func() []string {
		var s []string
		for _, e := range errs {
			s = append(s, e.Error())
		}
		return s
	}(), "\n"), "<redacted>", "the unreachable webhook's URL was masked")
}

func TestReason(t *testing.T) {
	assert.Empty(t, Reason(nil))
	assert.Equal(t, ReasonTimeout, Reason(context.DeadlineExceeded))
	assert.Equal(t, ReasonOther, Reason(errors.New("boom")))
	assert.Equal(t, ReasonUncertain, Reason(fmt.Errorf("wrapped: %w", &UncertainError{Op: "post", Err: errors.New("x")})))
	assert.Equal(t, ReasonAuth, Reason(&Error{Op: "post", Reason: ReasonAuth, Err: errors.New("x")}))
	assert.Len(t, Reasons(), 8)
}
