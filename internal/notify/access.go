package notify

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/slack-go/slack"
)

// Identity is who a bot token authenticates as, from auth.test.
type Identity struct {
	Team   string // workspace name
	TeamID string
	User   string // the bot user's name
	UserID string
	BotID  string
}

// Identify calls auth.test and returns who the token authenticates as. Its
// errors are AuthTest's: an *Error with Reason "auth" when Slack refuses
// the token.
func (c *Client) Identify(ctx context.Context) (Identity, error) {
	var id Identity
	err := c.do(ctx, "auth_test", "", true, func(ctx context.Context) error {
		r, err := c.api.AuthTestContext(ctx)
		if err != nil {
			return err
		}
		id = Identity{Team: r.Team, TeamID: r.TeamID, User: r.User, UserID: r.UserID, BotID: r.BotID}
		return nil
	})
	return id, err
}

// ProbeLead is how far ahead CanPost schedules its message: long enough
// that it is deleted well before it would post.
const ProbeLead = 10 * time.Minute

// ErrProbeNotDeleted is wrapped by CanPost's error when the channel took
// the scheduled message but deleting it failed: it will be posted at its
// time unless someone deletes it in Slack.
var ErrProbeNotDeleted = errors.New("the scheduled test message could not be deleted")

// CanPost checks, without a visible message, that the bot may post m to
// channel: it schedules m ProbeLead ahead (chat.scheduleMessage, which
// needs the same chat:write scope and channel access as a post) and
// deletes it at once (chat.deleteScheduledMessage).
//
// Errors are classified like Post's: Reason "channel_not_found" with the
// Code channel_not_found, not_in_channel or is_archived when the bot cannot
// post there, "auth" for a token or scope problem (Code missing_scope).
// When the message was scheduled but could not be deleted, the error wraps
// ErrProbeNotDeleted and says when it will post.
func (c *Client) CanPost(ctx context.Context, channel string, m Message) error {
	postAt := c.now().Add(ProbeLead)
	var channelID, id string
	err := c.do(ctx, "schedule", channel, false, func(ctx context.Context) error {
		var err error
		channelID, id, err = c.api.ScheduleMessageContext(ctx, channel, strconv.FormatInt(postAt.Unix(), 10), msgOptions(m)...)
		return err
	})
	if err != nil {
		return err
	}
	// Deleting twice is harmless, so it is retried like an update.
	err = c.do(ctx, "delete_scheduled", channel, true, func(ctx context.Context) error {
		_, err := c.api.DeleteScheduledMessageContext(ctx, &slack.DeleteScheduledMessageParameters{
			Channel: channelID, ScheduledMessageID: id,
		})
		return err
	})
	if err != nil {
		return &probeError{postAt: postAt, err: err}
	}
	return nil
}

// probeError is a scheduled test message left behind.
type probeError struct {
	postAt time.Time
	err    error
}

func (e *probeError) Error() string {
	return ErrProbeNotDeleted.Error() + " and will be posted at " + e.postAt.UTC().Format(time.RFC3339) +
		" unless deleted in Slack: " + e.err.Error()
}

func (e *probeError) Unwrap() []error { return []error{ErrProbeNotDeleted, e.err} }

// DoctorMessage is the message tenantdrift doctor schedules (and deletes)
// to check a channel, or posts with --post-test; version is tenantdrift's.
func DoctorMessage(version string) Message {
	line := ":stethoscope: *tenantdrift doctor* test message (tenantdrift " + escape(version, maxFree) +
		"): alerts about the tenant registry will be posted here."
	return finish("tenantdrift doctor test message: alerts about the tenant registry will be posted here",
		[]slack.Block{section(line)})
}
