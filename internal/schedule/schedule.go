// Package schedule runs each of tenantdrift's checks on its own cron
// schedule. It is a small wrapper around github.com/robfig/cron/v3 (v3.0.1)
// that fixes the library's sharp edges:
//
//   - Parse never panics. cron.ParseStandard panics (slice bounds out of
//     range) on any spec that starts with "TZ=" or "CRON_TZ=" and contains no
//     space, such as "CRON_TZ=", "TZ=0" or "CRON_TZ=Europe/Berlin". Parse
//     reads the time zone prefix itself and still calls the library under a
//     recover, so whatever else may panic comes back as an error.
//   - Parse rejects what the library silently rewrites: "@every" below one
//     second or with a fraction of a second (the library rounds "@every -1s"
//     and "@every 1500ms" to 1s), steps larger than their field ("*/61 * * *
//     *" would fire once an hour), the zone "Local" and an empty zone (the
//     library reads "CRON_TZ= " as UTC), and dates that never occur
//     ("0 0 30 2 *" never fires).
//   - A spec without a time zone prefix is in UTC, not in the machine's
//     local zone.
//
// A Scheduler runs Jobs with per-job overlap protection, panic recovery and
// a per-run timeout, all written as cron.JobWrappers. Their order matters.
// In v3.0.1, cron.SkipIfStillRunning takes the job's "running" token, calls
// the job and puts the token back on the next line, without a defer: a
// panic leaves the token taken. With the library's usual
// cron.WithChain(cron.Recover(l), cron.SkipIfStillRunning(l)), that is
// Recover(Skip(job)), the panic unwinds through Skip before Recover stops
// it, so the job is skipped forever after its first panic. Recovery must
// sit inside the guard, Skip(Recover(job)), which is the order this package
// uses (and its guard releases the token in a defer besides).
package schedule

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
)

// maxSpecLen bounds a spec; real ones are a few dozen bytes. It keeps a
// pasted file out of error messages and out of the parser.
const maxSpecLen = 512

// intervalSamples is how many gaps between firings Interval looks at. It is
// odd, so the median is one of them.
const intervalSamples = 25

// intervalRef is the fixed moment from which Interval samples firings, so
// that a schedule's Interval does not depend on when it was parsed.
func intervalRef() time.Time { return time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC) }

// Schedule is a parsed cron spec. The zero value never fires; Scheduler.Add
// rejects it.
type Schedule struct {
	spec     string
	cron     cron.Schedule
	interval time.Duration
}

// Next returns the first firing strictly after t, in t's location, or the
// zero time if the schedule never fires again (or is the zero Schedule).
func (s Schedule) Next(t time.Time) time.Time {
	if s.cron == nil {
		return time.Time{}
	}
	return s.cron.Next(t)
}

// Interval returns the typical gap between runs: the duration of "@every",
// and for every other spec the median gap between 25 consecutive firings
// after a fixed reference moment (so "*/15 * * * *" is 15m and "0 3 * * *"
// is 24h). Schedules with uneven gaps get their most common one: "0 9 * * 1-5"
// is 24h although Friday's run is followed by a 72h gap.
func (s Schedule) Interval() time.Duration { return s.interval }

// String returns the spec as given to Parse, without surrounding space.
func (s Schedule) String() string { return s.spec }

// Parse parses a 5-field cron spec (minute hour day-of-month month
// day-of-week, as cron.ParseStandard), a descriptor ("@every 5m",
// "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly",
// "@annually"), either optionally preceded by "CRON_TZ=Zone " or "TZ=Zone "
// (an IANA zone name such as Europe/Berlin). Without a prefix the spec is in
// UTC.
//
// It never panics. Every error reads `invalid cron expression "<spec>":
// <reason>`; the reasons include a spec that is empty or longer than 512
// bytes, an unknown, empty or "Local" time zone, a time zone prefix with
// no schedule, "@every" below 1s or not a whole number of seconds, a step
// larger than its field, and a date that never occurs.
func Parse(spec string) (Schedule, error) {
	s, err := parse(spec)
	if err != nil {
		return Schedule{}, fmt.Errorf("invalid cron expression %q: %w", shorten(spec), err)
	}
	return s, nil
}

func parse(spec string) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return Schedule{}, errors.New("empty")
	case len(spec) > maxSpecLen:
		return Schedule{}, fmt.Errorf("longer than %d bytes", maxSpecLen)
	case !utf8.ValidString(spec):
		return Schedule{}, errors.New("not valid UTF-8")
	}

	loc, rest, err := cutZone(spec)
	if err != nil {
		return Schedule{}, err
	}

	if f := strings.Fields(rest); f[0] == "@every" {
		d, err := parseEvery(f[1:])
		if err != nil {
			return Schedule{}, err
		}
		return Schedule{spec: spec, cron: cron.Every(d), interval: d}, nil
	}
	if !strings.HasPrefix(rest, "@") {
		if err := checkSteps(rest); err != nil {
			return Schedule{}, err
		}
	}
	cs, err := parseStandard(rest)
	if err != nil {
		return Schedule{}, err
	}
	ss, ok := cs.(*cron.SpecSchedule)
	if !ok { // only @every yields another type, and it is handled above
		return Schedule{}, fmt.Errorf("unexpected schedule type %T", cs)
	}
	ss.Location = loc
	if ss.Next(intervalRef()).IsZero() {
		return Schedule{}, errors.New("never fires: no date matches")
	}
	return Schedule{spec: spec, cron: ss, interval: medianGap(ss)}, nil
}

// cutZone splits off a "CRON_TZ=Zone " or "TZ=Zone " prefix. Without one,
// the zone is UTC.
func cutZone(spec string) (*time.Location, string, error) {
	var after string
	var found bool
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		if after, found = strings.CutPrefix(spec, prefix); found {
			break
		}
	}
	if !found {
		return time.UTC, spec, nil
	}
	name, rest := after, ""
	if i := strings.IndexFunc(after, unicode.IsSpace); i >= 0 {
		name, rest = after[:i], strings.TrimSpace(after[i:])
	}
	switch {
	case name == "":
		return nil, "", errors.New("empty time zone after TZ= or CRON_TZ=")
	case name == "Local":
		return nil, "", errors.New(`time zone "Local" depends on the machine: name a zone such as Europe/Berlin`)
	case rest == "":
		return nil, "", fmt.Errorf("time zone %s without a schedule after it", name)
	case strings.HasPrefix(rest, "TZ=") || strings.HasPrefix(rest, "CRON_TZ="):
		return nil, "", errors.New("more than one time zone prefix")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, "", fmt.Errorf("load time zone: %w", err)
	}
	return loc, rest, nil
}

// parseEvery parses the arguments of "@every": one duration, a whole number
// of seconds, at least one second.
func parseEvery(args []string) (time.Duration, error) {
	if len(args) != 1 {
		return 0, errors.New(`@every takes one duration, as in "@every 5m"`)
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		return 0, fmt.Errorf("parse @every duration: %w", err)
	}
	if d < time.Second {
		return 0, fmt.Errorf("@every %s is below the minimum of 1s", args[0])
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("@every %s is not a whole number of seconds", args[0])
	}
	return d, nil
}

// checkSteps rejects a step larger than its field ("*/61" minutes), which
// the library accepts and turns into a single value. Every other problem is
// left to the library, whose messages are good.
func checkSteps(spec string) error {
	// The largest value of each of the five standard fields.
	fieldMax := [5]struct {
		name string
		max  int
	}{{"minute", 59}, {"hour", 23}, {"day-of-month", 31}, {"month", 12}, {"day-of-week", 6}}
	fields := strings.Fields(spec)
	if len(fields) != len(fieldMax) {
		return nil
	}
	for i, field := range fields {
		for part := range strings.SplitSeq(field, ",") {
			_, step, ok := strings.Cut(part, "/")
			if !ok {
				continue
			}
			if n, err := strconv.Atoi(step); err == nil && n > fieldMax[i].max {
				return fmt.Errorf("step %d of the %s field is larger than its maximum %d", n, fieldMax[i].name, fieldMax[i].max)
			}
		}
	}
	return nil
}

// parseStandard calls cron.ParseStandard, turning a panic into an error.
func parseStandard(spec string) (s cron.Schedule, err error) {
	defer func() {
		if v := recover(); v != nil {
			s, err = nil, fmt.Errorf("cron parser panicked: %v", v)
		}
	}()
	return cron.ParseStandard(spec)
}

// medianGap returns the median gap between consecutive firings after
// intervalRef.
func medianGap(s cron.Schedule) time.Duration {
	gaps := make([]time.Duration, 0, intervalSamples)
	t := s.Next(intervalRef())
	for range intervalSamples {
		next := s.Next(t)
		if next.IsZero() {
			break
		}
		gaps = append(gaps, next.Sub(t))
		t = next
	}
	if len(gaps) == 0 {
		return 0
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}

// shorten keeps an error message readable when the spec is long.
func shorten(spec string) string {
	const keep = 64
	spec = strings.TrimSpace(spec)
	if utf8.RuneCountInString(spec) <= keep {
		return spec
	}
	return string([]rune(spec)[:keep]) + "…"
}
