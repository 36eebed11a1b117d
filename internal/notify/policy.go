package notify

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/check"
	"github.com/tenantdrift/tenantdrift/internal/state"
)

// DefaultStormThreshold is how many new findings one run may announce
// before Plan summarises them in one storm message.
const DefaultStormThreshold = 50

// PolicyOptions are what Plan decides by. The zero value announces every
// severity, with DefaultStormThreshold, and reminds nothing.
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
	// message that announces reopened findings only, and which reminders
	// are measured to.
	RunTime time.Time
	// RepeatInterval: still-open critical findings are reminded in their
	// thread once this long has passed since its announcement or its last
	// reminder; 0 reminds nothing.
	RepeatInterval time.Duration
}

// Plan decides the notifications of one recorded run of checkName from its
// transitions. It is pure and never fails:
//
//   - New and reopened findings at or above MinSeverity are announced in
//     one new_findings item per severity, saved under the thread key
//     checkName/severity/<first seen, µs>: new findings are first seen at
//     the run's time, so every resolution can find its thread again from
//     the finding alone. Still-open findings never announced (NotifiedAt
//     nil: recorded while Slack was off, say) are announced like new ones,
//     once. A group without new findings is keyed by RunTime. The item
//     lists the fingerprints it announces, so that later runs see its
//     thread (Transitions.Threads) and the store stamps their NotifiedAt
//     with the run's time.
//   - More than StormThreshold findings to announce become one storm item
//     (counts per reason, no thread, the fingerprints) instead.
//   - Resolved findings at or above MinSeverity get one resolved_reply
//     item per thread they were announced in (same key: check, severity,
//     and the time of the first announcement, NotifiedAt, or first seen
//     when unset). A reopened finding's resolution goes to the thread of
//     its first announcement; when a thread is unknown (a storm, a
//     severity that changed, a message never posted) the Deliverer posts
//     the reply as a new message.
//   - An open thread none of whose findings is open any more gets one
//     resolved_edit item holding all of them, after the replies: the
//     original message then shows them resolved.
//   - An open thread with still-open critical findings gets a reminder
//     item listing them when RepeatInterval has passed since it was last
//     announced or reminded. A finding announced in several open threads
//     (it was reopened) is reminded in the newest only.
func Plan(checkName string, t state.Transitions, opts PolicyOptions) []state.OutboxItem {
	return PlanRuns(map[string]state.Transitions{checkName: t}, opts)
}

// PlanRuns is Plan for runs of several checks recorded together (one
// audit), by check name: each check's items are Plan's, except that the
// storm threshold applies to the findings to announce of all the checks
// together, and a storm is one item with counts for every check. Checks
// are planned in name order.
func PlanRuns(runs map[string]state.Transitions, opts PolicyOptions) []state.OutboxItem {
	minRank := check.Rank(opts.MinSeverity)
	if opts.MinSeverity == "" {
		minRank = 0
	}
	announced := func(f state.Finding) bool { return check.Rank(f.Severity) >= minRank }
	names := slices.Sorted(maps.Keys(runs))

	var items []state.OutboxItem
	fresh := map[string][]state.Finding{}
	total := 0
	for _, name := range names {
		t := runs[name]
		for _, f := range slices.Concat(t.New, t.Reopened, unannounced(t.StillOpen)) {
			if announced(f) {
				fresh[name] = append(fresh[name], f)
				total++
			}
		}
		// Resolutions, edits and reminders first: a storm never holds
		// them back.
		items = append(items, planResolved(name, t.Resolved, announced, opts)...)
		items = append(items, planThreads(name, t.Threads, opts)...)
	}

	threshold := cmp.Or(max(opts.StormThreshold, 0), DefaultStormThreshold)
	if total > threshold {
		counts := map[string]map[string]int{}
		top := ""
		var fps []string
		for _, name := range names {
			fs, ok := fresh[name]
			if !ok {
				continue
			}
			counts[name] = map[string]int{}
			for _, f := range fs {
				fps = append(fps, f.Fingerprint)
				counts[name][cmp.Or(f.Reason, "unspecified")]++
				if check.Rank(f.Severity) > check.Rank(top) {
					top = f.Severity
				}
			}
		}
		return append(items, state.OutboxItem{
			Kind: state.KindStorm, Channel: opts.Channels[top], Fingerprints: fps,
			Payload: Payload{Counts: counts, Total: total},
		})
	}
	for _, name := range names {
		items = append(items, planNew(name, runs[name].New, fresh[name], opts)...)
	}
	return items
}

// unannounced returns the findings of open that no notification announced
// yet.
func unannounced(open []state.Finding) []state.Finding {
	var out []state.Finding
	for _, f := range open {
		if f.NotifiedAt == nil {
			out = append(out, f)
		}
	}
	return out
}

// planResolved returns one resolved_reply item per thread that announced
// some of resolved.
func planResolved(checkName string, resolved []state.Finding, announced func(state.Finding) bool, opts PolicyOptions) []state.OutboxItem {
	byThread := map[string][]state.Finding{}
	var keys []string
	for _, f := range resolved {
		if !announced(f) {
			continue
		}
		first := f.FirstSeen
		if f.NotifiedAt != nil {
			first = *f.NotifiedAt
		}
		k := threadKey(checkName, f.Severity, first)
		if _, ok := byThread[k]; !ok {
			keys = append(keys, k)
		}
		byThread[k] = append(byThread[k], f)
	}
	items := make([]state.OutboxItem, 0, len(keys))
	for _, k := range keys {
		fs := byThread[k]
		items = append(items, state.OutboxItem{
			Kind: state.KindResolvedReply, Check: checkName, Channel: opts.Channels[fs[0].Severity], ThreadKey: k,
			Payload: Payload{Severity: fs[0].Severity, Findings: PayloadFindings(fs)},
		})
	}
	return items
}

// planThreads returns the edits of the open threads whose findings are all
// resolved and the reminders that are due.
func planThreads(checkName string, threads []state.Thread, opts PolicyOptions) []state.OutboxItem {
	var items []state.OutboxItem
	for _, th := range threads {
		if !th.Open() && len(th.Findings) > 0 {
			sev := th.Findings[0].Severity // the most severe
			items = append(items, state.OutboxItem{
				Kind: state.KindResolvedEdit, Check: checkName, Channel: opts.Channels[sev], ThreadKey: th.Key,
				Payload: Payload{Severity: sev, Findings: PayloadFindings(th.Findings)},
			})
		}
	}
	if opts.RepeatInterval <= 0 {
		return items
	}
	reminded := map[string]bool{}
	// Newest first, so that a reopened finding is reminded where it was
	// last announced.
	for _, th := range slices.Backward(threads) {
		if opts.RunTime.Before(th.LastNotified().Add(opts.RepeatInterval)) {
			continue
		}
		var open []state.Finding
		for _, f := range th.Findings {
			if f.ResolvedAt == nil && f.Severity == config.SeverityCritical && !reminded[f.Fingerprint] {
				open = append(open, f)
				reminded[f.Fingerprint] = true
			}
		}
		if len(open) > 0 {
			items = append(items, state.OutboxItem{
				Kind: state.KindReminder, Check: checkName, Channel: opts.Channels[config.SeverityCritical], ThreadKey: th.Key,
				Payload: Payload{Findings: PayloadFindings(open), At: opts.RunTime},
			})
		}
	}
	return items
}

// planNew returns the new_findings items of checkName's findings to
// announce, fresh, of which isNew were first seen in this run.
func planNew(checkName string, isNew, fresh []state.Finding, opts PolicyOptions) []state.OutboxItem {
	firstRun := map[string]bool{}
	for _, f := range isNew {
		firstRun[f.Fingerprint] = true
	}
	bySeverity := map[string][]state.Finding{}
	for _, f := range fresh {
		bySeverity[f.Severity] = append(bySeverity[f.Severity], f)
	}
	sevs := slices.Collect(maps.Keys(bySeverity))
	// Most severe first.
	slices.SortFunc(sevs, func(a, b string) int { return cmp.Or(cmp.Compare(check.Rank(b), check.Rank(a)), cmp.Compare(a, b)) })
	items := make([]state.OutboxItem, 0, len(sevs))
	for _, sev := range sevs {
		fs := bySeverity[sev]
		at, keyed := opts.RunTime, false
		fps := make([]string, len(fs))
		for i, f := range fs {
			if !keyed && firstRun[f.Fingerprint] {
				at, keyed = f.FirstSeen, true
			}
			fps[i] = f.Fingerprint
		}
		items = append(items, state.OutboxItem{
			Kind: state.KindNewFindings, Check: checkName, Channel: opts.Channels[sev], ThreadKey: threadKey(checkName, sev, at),
			Fingerprints: fps, Payload: Payload{Severity: sev, Findings: PayloadFindings(fs)},
		})
	}
	return items
}

// threadKey names the message that announced findings of checkName and
// severity first seen (or first announced) at at.
func threadKey(checkName, severity string, at time.Time) string {
	return checkName + "/" + severity + "/" + strconv.FormatInt(at.UnixMicro(), 10)
}
