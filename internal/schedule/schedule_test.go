package schedule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantdrift/tenantdrift/internal/schedule"
)

func TestParse(t *testing.T) {
	t.Parallel()
	valid := []string{
		"* * * * *",
		"*/15 * * * *",
		"*/59 * * * *",
		"0 3 * * *",
		"0 9 * * 1-5",
		"0 0 1 jan,jul *",
		"0 0 31 * *",
		"0 0 29 2 *",
		"@every 1s",
		"@every 5m",
		"@every 1h30m",
		"  @every 5m  ",
		"@hourly",
		"@daily",
		"@midnight",
		"@weekly",
		"@monthly",
		"@yearly",
		"@annually",
		"CRON_TZ=Europe/Berlin 0 3 * * *",
		"TZ=America/New_York @daily",
		"CRON_TZ=UTC @every 10s",
		"CRON_TZ=Europe/Berlin\t0 3 * * *",
	}
	for _, spec := range valid {
		t.Run(spec, func(t *testing.T) {
			s, err := schedule.Parse(spec)
			require.NoError(t, err)
			assert.Positive(t, s.Interval())
			assert.Equal(t, strings.TrimSpace(spec), s.String())
			ref := time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)
			assert.True(t, s.Next(ref).After(ref))
		})
	}

	invalid := []struct {
		name, spec, want string
	}{
		{"empty", "", "empty"},
		{"blank", "   ", "empty"},
		// cron.ParseStandard panics on each of these five.
		{"CRON_TZ alone", "CRON_TZ=", "empty time zone"},
		{"TZ alone", "TZ=", "empty time zone"},
		{"TZ=0", "TZ=0", "time zone 0 without a schedule"},
		{"TZ=UTC alone", "TZ=UTC", "time zone UTC without a schedule"},
		{"zone without schedule", "CRON_TZ=Europe/Berlin", "without a schedule"},
		{"unknown zone", "CRON_TZ=Nowhere/Zone * * * * *", "unknown time zone Nowhere/Zone"},
		{"empty zone", "CRON_TZ= * * * * *", "empty time zone"},
		{"Local zone", "TZ=Local * * * * *", `"Local" depends on the machine`},
		{"path as zone", "TZ=../../etc/passwd * * * * *", "load time zone"},
		{"two zones", "TZ=UTC CRON_TZ=Europe/Berlin * * * * *", "more than one time zone prefix"},
		{"every negative", "@every -1s", "below the minimum of 1s"},
		{"every zero", "@every 0s", "below the minimum of 1s"},
		{"every sub-second", "@every 500ms", "below the minimum of 1s"},
		{"every fraction", "@every 1500ms", "not a whole number of seconds"},
		{"every without duration", "@every", "takes one duration"},
		{"every two durations", "@every 5m 10s", "takes one duration"},
		{"every words", "@every five", "parse @every duration"},
		{"every overflow", "@every 9999999h", "parse @every duration"},
		{"unknown descriptor", "@fortnightly", "unrecognized descriptor"},
		{"descriptor with extra", "@daily 3", "unrecognized descriptor"},
		{"zero step", "*/0 * * * *", "step of range should be a positive number"},
		{"minute step too big", "*/61 * * * *", "step 61 of the minute field"},
		{"minute step of 60", "*/60 * * * *", "step 60 of the minute field"},
		{"hour step too big", "0 */24 * * *", "step 24 of the hour field"},
		{"weekday step too big", "0 0 * * 1/7", "step 7 of the day-of-week field"},
		{"huge step", "*/9223372036854775807 * * * *", "step 9223372036854775807"},
		{"four fields", "* * * *", "expected exactly 5 fields"},
		{"six fields", "0 * * * * *", "expected exactly 5 fields"},
		{"minute too big", "60 * * * *", "above maximum"},
		{"backwards range", "5-3 * * * *", "beyond end of range"},
		{"never fires", "0 0 30 2 *", "never fires"},
		{"roman numeral", "ⅷ * * * *", "failed to parse int"},
		{"arabic digit", "١ * * * *", "failed to parse int"},
		{"emoji", "* * * * 🙂", "failed to parse int"},
		{"invalid UTF-8", "\xff * * * *", "not valid UTF-8"},
		{"very long", strings.Repeat("*", 100_000), "longer than 512 bytes"},
		{"very long list", strings.Repeat("1,", 300) + "1 * * * *", "longer than 512 bytes"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { _, err = schedule.Parse(tc.spec) })
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), `invalid cron expression "`), err.Error())
			assert.Less(t, len(err.Error()), 400, "the error quotes a shortened spec")
		})
	}
}

func TestInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		want time.Duration
	}{
		{"@every 5m", 5 * time.Minute},
		{"@every 1h30m", 90 * time.Minute},
		{"* * * * *", time.Minute},
		{"*/15 * * * *", 15 * time.Minute},
		{"0 */6 * * *", 6 * time.Hour},
		{"0 3 * * *", 24 * time.Hour},
		{"CRON_TZ=Europe/Berlin 0 3 * * *", 24 * time.Hour},
		{"0 9 * * 1-5", 24 * time.Hour},
		{"@hourly", time.Hour},
		{"@daily", 24 * time.Hour},
		{"@weekly", 7 * 24 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := schedule.Parse(tc.spec)
			require.NoError(t, err)
			assert.Equal(t, tc.want, s.Interval())
		})
	}
}

func TestParseTimeZone(t *testing.T) {
	t.Parallel()
	winter := time.Date(2025, time.January, 15, 0, 0, 0, 0, time.UTC)
	summer := time.Date(2025, time.July, 15, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		spec             string
		winterAt, summer time.Time
	}{
		{"0 3 * * *", winter.Add(3 * time.Hour), summer.Add(3 * time.Hour)},
		{"CRON_TZ=UTC 0 3 * * *", winter.Add(3 * time.Hour), summer.Add(3 * time.Hour)},
		// 03:00 in Berlin is 02:00 UTC in winter (CET) and 01:00 UTC in summer (CEST).
		{"CRON_TZ=Europe/Berlin 0 3 * * *", winter.Add(2 * time.Hour), summer.Add(1 * time.Hour)},
		{"TZ=Europe/Berlin 0 3 * * *", winter.Add(2 * time.Hour), summer.Add(1 * time.Hour)},
		{"TZ=Europe/Berlin @daily", winter.Add(23 * time.Hour), summer.Add(22 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := schedule.Parse(tc.spec)
			require.NoError(t, err)
			assert.True(t, tc.winterAt.Equal(s.Next(winter)), "winter: got %s", s.Next(winter))
			assert.True(t, tc.summer.Equal(s.Next(summer)), "summer: got %s", s.Next(summer))
		})
	}

	// Without a prefix the zone is UTC, whatever the location of t.
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	require.NoError(t, err)
	s, err := schedule.Parse("0 3 * * *")
	require.NoError(t, err)
	assert.True(t, winter.Add(3*time.Hour).Equal(s.Next(winter.In(tokyo))))
}

func TestZeroSchedule(t *testing.T) {
	t.Parallel()
	var s schedule.Schedule
	assert.True(t, s.Next(time.Now()).IsZero())
	assert.Zero(t, s.Interval())
}

// FuzzParse checks that Parse never panics and that what it accepts fires.
// The seeds include every input found to panic cron.ParseStandard.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"* * * * *", "@every 5m", "CRON_TZ=Europe/Berlin 0 3 * * *", "TZ=UTC @daily",
		"CRON_TZ=", "TZ=", "TZ=0", "TZ=UTC", "CRON_TZ=Europe/Berlin", "TZ=TZ=TZ=",
		"@every -1s", "*/61 * * * *", "0 0 30 2 *",
	} {
		f.Add(seed)
	}
	ref := time.Date(2025, time.June, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := schedule.Parse(spec)
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "invalid cron expression "), err.Error())
			return
		}
		require.Positive(t, s.Interval())
		require.True(t, s.Next(ref).After(ref))
	})
}
