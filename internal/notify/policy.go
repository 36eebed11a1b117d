package notify

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

// DefaultStormThreshold is how many new findings one run may announce
// before Plan summarises them in one storm message.
const DefaultStormThreshold = 50

// PolicyOptions are what Plan decides by. The zero value announces every
// severity, with DefaultStormThreshold.
type PolicyOptions struct {
	// MinSeverity is the least severe finding announced (or whose
	// resolution is); "" means every severity.
	MinSeverity string
	// StormThreshold: a run with more findings to announce than this gets
	// one storm item instead; DefaultStormThreshold when not positive.
	StormThreshold int
	// Channels maps a severity to its channel; a severity not in it
	// leaves the channel to the Deliverer's default.
	Channels map[string]string
	// RunTime is the run's finished time, which names the thread of a
	// message that announces reopened findings only.
	RunTime time.Time
}

// Plan decides the notifications of one recorded run of checkName from its
// transitions. It is pure and never fails:
//
//   - New and reopened findings at or above MinSeverity are announced in
//     one new_findings item per severity, saved under the thread key
//     checkName/severity/<first seen, µs>: new findings are first seen at
//     the run's time, so every resolution can find its thread again from
//     the finding alone. A group of reopened findings only is keyed by
//     RunTime.
//   - More than StormThreshold findings to announce become one storm item
//     (counts per reason, no thread) instead.
//   - Resolved findings at or above MinSeverity get one resolved_reply
//     item per thread they were announced in (same key: check, severity,
//     first seen). A reopened finding's resolution goes to the thread of
//     its first announcement; when a thread is unknown (a storm, a
//     severity that changed, a message never posted) the Deliverer posts
//     the reply as a new message.
func Plan(checkName string, t state.Transitions, opts PolicyOptions) []state.OutboxItem {
	minRank := check.Rank(opts.MinSeverity)
	if opts.MinSeverity == "" {
		minRank = 0
	}
	announced := func(f state.Finding) bool { return check.Rank(f.Severity) >= minRank }
	var fresh []state.Finding
	for _, f := range slices.Concat(t.New, t.Reopened) {
		if announced(f) {
			fresh = append(fresh, f)
		}
	}
	threshold := cmp.Or(max(opts.StormThreshold, 0), DefaultStormThreshold)

	var items []state.OutboxItem
	// Resolutions first: a storm never holds them back.
	resolved := map[string][]state.Finding{}
	var keys []string
	for _, f := range t.Resolved {
		if !announced(f) {
			continue
		}
		k := threadKey(checkName, f.Severity, f.FirstSeen)
		if _, ok := resolved[k]; !ok {
			keys = append(keys, k)
		}
		resolved[k] = append(resolved[k], f)
	}
	for _, k := range keys {
		fs := resolved[k]
		items = append(items, state.OutboxItem{
			Kind: state.KindResolvedReply, Check: checkName, Channel: opts.Channels[fs[0].Severity], ThreadKey: k,
			Payload: Payload{Severity: fs[0].Severity, Findings: PayloadFindings(fs)},
		})
	}

	if len(fresh) > threshold {
		counts := map[string]map[string]int{checkName: {}}
		top := ""
		for _, f := range fresh {
			counts[checkName][cmp.Or(f.Reason, "unspecified")]++
			if check.Rank(f.Severity) > check.Rank(top) {
				top = f.Severity
			}
		}
		return append(items, state.OutboxItem{
			Kind: state.KindStorm, Channel: opts.Channels[top],
			Payload: Payload{Counts: counts, Total: len(fresh)},
		})
	}

	isNew := map[string]bool{}
	for _, f := range t.New {
		isNew[f.Fingerprint] = true
	}
	bySeverity := map[string][]state.Finding{}
	for _, f := range fresh {
		bySeverity[f.Severity] = append(bySeverity[f.Severity], f)
	}
	sevs := make([]string, 0, len(bySeverity))
	for s := range bySeverity {
		sevs = append(sevs, s)
	}
	// Most severe first.
	slices.SortFunc(sevs, func(a, b string) int { return cmp.Or(cmp.Compare(check.Rank(b), check.Rank(a)), cmp.Compare(a, b)) })
	for _, sev := range sevs {
		fs := bySeverity[sev]
		at := opts.RunTime
		for _, f := range fs {
			if isNew[f.Fingerprint] {
				at = f.FirstSeen
				break
			}
		}
		items = append(items, state.OutboxItem{
			Kind: state.KindNewFindings, Check: checkName, Channel: opts.Channels[sev], ThreadKey: threadKey(checkName, sev, at),
			Payload: Payload{Severity: sev, Findings: PayloadFindings(fs)},
		})
	}
	return items
}

// threadKey names the message that announced findings of checkName and
// severity first seen at firstSeen.
func threadKey(checkName, severity string, firstSeen time.Time) string {
	return checkName + "/" + severity + "/" + strconv.FormatInt(firstSeen.UnixMicro(), 10)
}
