package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIdentify(t *testing.T) {
	f := newFakeSlack(t, nil)
	id, err := newClient(f, &fakeClock{now: time.Unix(1795856400, 0)}, nil, Options{}).Identify(context.Background())
	require.NoError(t, err)
	assert.Equal(t, Identity{Team: "T", TeamID: "T1", User: "tenantdrift", UserID: "U1"}, id)
}

// scheduling answers chat.scheduleMessage with schedule (a Slack error
// code, or "" for success) and chat.deleteScheduledMessage with del.
func scheduling(schedule, del string) func(http.ResponseWriter, *http.Request, int) bool {
	return func(w http.ResponseWriter, r *http.Request, _ int) bool {
		w.Header().Set("Content-Type", "application/json")
		code := ""
		switch r.URL.Path {
		case "/api/chat.scheduleMessage":
			code = schedule
		case "/api/chat.deleteScheduledMessage":
			code = del
		default:
			return false
		}
		if code != "" {
			fmt.Fprintf(w, `{"ok":false,"error":%q}`, code)
			return true
		}
		fmt.Fprint(w, `{"ok":true,"channel":"C0ALERTS","scheduled_message_id":"Q1298393284","post_at":1795857000}`)
		return true
	}
}

func TestCanPost(t *testing.T) {
	now := time.Unix(1795856400, 0)
	tests := []struct {
		name          string
		schedule, del string
		reason, code  string
		requests      int
		notDeleted    bool
	}{
		{name: "ok", requests: 2},
		{name: "not in channel", schedule: "not_in_channel", reason: ReasonChannelNotFound, code: "not_in_channel", requests: 1},
		{name: "channel not found", schedule: "channel_not_found", reason: ReasonChannelNotFound, code: "channel_not_found", requests: 1},
		{name: "missing scope", schedule: "missing_scope", reason: ReasonAuth, code: "missing_scope", requests: 1},
		{name: "delete fails", del: "invalid_scheduled_message_id", reason: ReasonOther, code: "invalid_scheduled_message_id", requests: 2, notDeleted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t, nil)
			f.respond = scheduling(tt.schedule, tt.del)
			c := newClient(f, &fakeClock{now: now}, nil, Options{})
			err := c.CanPost(context.Background(), "#tenant-alerts", testMessage())
			reqs := f.requests()
			require.Len(t, reqs, tt.requests)
			assert.Equal(t, "/api/chat.scheduleMessage", reqs[0].Path)
			assert.Equal(t, "#tenant-alerts", reqs[0].Form.Get("channel"))
			assert.Equal(t, strconv.FormatInt(now.Add(ProbeLead).Unix(), 10), reqs[0].Form.Get("post_at"))
			if tt.requests > 1 {
				assert.Equal(t, "/api/chat.deleteScheduledMessage", reqs[1].Path)
				assert.Equal(t, "C0ALERTS", reqs[1].Form.Get("channel"), "deleted by the channel ID Slack returned")
				assert.Equal(t, "Q1298393284", reqs[1].Form.Get("scheduled_message_id"))
			}
			for _, r := range reqs {
				assert.NotEqual(t, "/api/chat.postMessage", r.Path, "nothing visible is posted")
			}
			if tt.reason == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.reason, Reason(err))
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.code, e.Code)
			assert.Equal(t, tt.notDeleted, errors.Is(err, ErrProbeNotDeleted))
			if tt.notDeleted {
				assert.Contains(t, err.Error(), now.Add(ProbeLead).UTC().Format(time.RFC3339))
			}
			assert.NotContains(t, err.Error(), canaryToken)
		})
	}
}
