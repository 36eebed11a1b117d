package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/slack-go/slack"
)

// Reasons a delivery failed: a small closed set, usable as a metric label.
const (
	ReasonRateLimited     = "rate_limited"
	ReasonServerError     = "server_error"
	ReasonNetwork         = "network"
	ReasonTimeout         = "timeout"
	ReasonUncertain       = "uncertain"
	ReasonAuth            = "auth"
	ReasonChannelNotFound = "channel_not_found"
	ReasonOther           = "other"
)

// Reasons lists every reason Reason returns, for pre-initialising metric
// series.
func Reasons() []string {
	return []string{ReasonRateLimited, ReasonServerError, ReasonNetwork, ReasonTimeout,
		ReasonUncertain, ReasonAuth, ReasonChannelNotFound, ReasonOther}
}

// Error is a delivery that failed for certain: Slack did not act on the
// request (or, for an edit or auth.test, acting twice would not matter).
// Its text never contains the token or a webhook URL.
type Error struct {
	Op       string // "post", "reply", "update", "auth_test" or "webhook"
	Reason   string // one of the Reason constants
	Code     string // Slack's error code ("channel_not_found") or HTTP status ("503"), when it gave one
	Attempts int
	Err      error // the last attempt's error, secrets redacted
}

func (e *Error) Error() string {
	if e.Attempts > 1 {
		return fmt.Sprintf("slack %s: %s after %d attempts: %v", e.Op, e.Reason, e.Attempts, e.Err)
	}
	return fmt.Sprintf("slack %s: %s: %v", e.Op, e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// UncertainError is a post that may or may not have reached the channel:
// the request was sent and then the connection failed, timed out, or Slack
// answered with a server error. It is not retried, so the message is never
// posted twice; the caller should record the delivery as uncertain.
// Its text never contains the token or a webhook URL.
type UncertainError struct {
	Op  string // "post", "reply" or "webhook"
	Err error  // what happened after the request was sent, secrets redacted
}

func (e *UncertainError) Error() string {
	return fmt.Sprintf("slack %s: may have been delivered: %v", e.Op, e.Err)
}

func (e *UncertainError) Unwrap() error { return e.Err }

// Reason classifies err into one of the Reason constants: "uncertain" for
// an *UncertainError, the recorded reason for an *Error, and otherwise by
// what err is (slack-go's errors, timeouts, network errors). It returns
// "" for a nil error.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var ue *UncertainError
	if errors.As(err, &ue) {
		return ReasonUncertain
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	r, _ := classify(err)
	return r
}

// authCodes are Slack error codes that mean the token cannot do this.
func isAuthCode(code string) bool {
	switch code {
	case "not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired",
		"no_permission", "missing_scope", "not_allowed_token_type", "ekm_access_denied",
		"team_access_not_granted", "invalid_token", "action_prohibited", "no_service":
		return true
	}
	return false
}

// isServerCode reports Slack error codes for a transient failure on
// Slack's side, after which part of the operation may have happened.
func isServerCode(code string) bool {
	switch code {
	case "internal_error", "fatal_error", "service_unavailable", "request_timeout":
		return true
	}
	return false
}

// classify returns err's reason and Slack's code for it, if any.
func classify(err error) (reason, code string) {
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var se slack.SlackErrorResponse
	var ne net.Error
	switch {
	case errors.As(err, &rl):
		return ReasonRateLimited, "429"
	case errors.As(err, &sc):
		code = fmt.Sprint(sc.Code)
		switch {
		case sc.Code == http.StatusTooManyRequests:
			return ReasonRateLimited, code
		case sc.Code >= 500:
			return ReasonServerError, code
		case sc.Code == http.StatusUnauthorized || sc.Code == http.StatusForbidden:
			return ReasonAuth, code
		}
		return ReasonOther, code
	case errors.As(err, &se):
		code = se.Err
		switch {
		case code == "ratelimited":
			return ReasonRateLimited, code
		case isServerCode(code):
			return ReasonServerError, code
		case isAuthCode(code):
			return ReasonAuth, code
		case code == "channel_not_found" || code == "not_in_channel" || code == "is_archived":
			return ReasonChannelNotFound, code
		}
		return ReasonOther, code
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout, ""
	case errors.Is(err, context.Canceled):
		return ReasonOther, ""
	case errors.As(err, &ne):
		return ReasonNetwork, ""
	}
	var op *net.OpError
	var dns *net.DNSError
	if errors.As(err, &op) || errors.As(err, &dns) {
		return ReasonNetwork, ""
	}
	return ReasonOther, ""
}

// cleanError is a cause with secrets removed from its text. It unwraps
// only to a context error, so errors.As cannot reach a *url.Error that
// still holds a webhook URL.
type cleanError struct {
	msg     string
	timeout bool
	ctxErr  error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Timeout() bool { return e.timeout }
func (e *cleanError) Unwrap() error { return e.ctxErr }
