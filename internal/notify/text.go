package notify

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Slack's limits, enforced on every rendered message.
const (
	// MaxBlocks is the most blocks Slack accepts in one message.
	MaxBlocks = 50
	// MaxSectionText is the most characters of a section's (or a context
	// element's) text.
	MaxSectionText = 3000
	// maxHeaderText is the most characters of a header block's text.
	maxHeaderText = 150
	// maxFallbackText bounds the notification text; Slack allows more, but
	// nobody reads more in a notification.
	maxFallbackText = 3000
)

// Per-value bounds, in runes, before escaping. Escaping multiplies a rune
// by at most five ("&amp;"), so one finding line stays well under
// MaxSectionText.
const (
	maxSlug   = 80
	maxID     = 64
	maxName   = 80
	maxValue  = 100
	maxReason = 80
	maxFree   = 500
)

const ellipsis = "…"

// clean makes registry text safe to show: invalid UTF-8, control
// characters (newlines and tabs included) and bidirectional overrides
// become U+FFFD, so a value can neither forge lines nor reorder text.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// cutRunes returns s cut to at most limit runes, ending in an ellipsis
// when it was cut. It reads no further into s than it needs.
func cutRunes(s string, limit int) string {
	n, cut := 0, -1
	for i := range s {
		if n == limit-1 {
			cut = i
		}
		if n == limit {
			return s[:cut] + ellipsis
		}
		n++
	}
	return s
}

// mentionWords are Slack's special mentions in their @ form.
var mentionWords = [...]string{"here", "channel", "everyone"}

// escape returns registry text s, cleaned and cut to limit runes, as inert
// mrkdwn: &, < and > are entity-escaped (so "<!channel>" cannot ping),
// "@here", "@channel" and "@everyone" get a zero-width space after the @,
// and formatting characters lose their meaning only inside code (see code).
func escape(s string, limit int) string {
	s = clean(cutRunes(s, limit))
	s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		if s[i] != '@' {
			continue
		}
		for _, w := range mentionWords {
			if len(s) >= i+1+len(w) && strings.EqualFold(s[i+1:i+1+len(w)], w) {
				b.WriteString("\u200b")
				break
			}
		}
	}
	return b.String()
}

// code returns registry text s as an inline code span, so mrkdwn
// formatting characters in it are shown as they are; a backtick, which
// would end the span, becomes U+02CB. The empty string is shown as
// _empty_.
func code(s string, limit int) string {
	if s == "" {
		return "_empty_"
	}
	return "`" + strings.ReplaceAll(escape(s, limit), "`", "\u02cb") + "`"
}

// plain returns s for a plain_text field: cleaned and cut to limit runes.
// Slack does not parse mentions or markup in plain_text.
func plain(s string, limit int) string { return clean(cutRunes(s, limit)) }

// utf16Len is the length of s in UTF-16 code units, which is how Slack
// counts characters; it is never less than the rune count.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += max(1, utf16.RuneLen(r))
	}
	return n
}

// truncate returns rendered mrkdwn s cut to at most limit UTF-16 units,
// ellipsis included, on a rune boundary and never inside an entity
// ("&amp;") or a Slack token ("<!date…>", "<url|text>").
func truncate(s string, limit int) string {
	if utf16Len(s) <= limit {
		return s
	}
	budget := limit - 1 // the ellipsis
	end, n := 0, 0
	for i, r := range s {
		w := max(1, utf16.RuneLen(r))
		if n+w > budget {
			break
		}
		n += w
		end = i + utf8.RuneLen(r)
	}
	cut := s[:end]
	if amp := strings.LastIndexByte(cut, '&'); amp >= 0 && !strings.Contains(cut[amp:], ";") {
		cut = cut[:amp]
	}
	if lt := strings.LastIndexByte(cut, '<'); lt >= 0 && !strings.Contains(cut[lt:], ">") {
		cut = cut[:lt]
	}
	// An odd number of backticks would leave a code span open.
	if strings.Count(cut, "`")%2 == 1 {
		cut = cut[:strings.LastIndexByte(cut, '`')]
	}
	return cut + ellipsis
}

// mrkdwn returns a mrkdwn text object for already escaped text, verbatim
// so Slack does not turn bare URLs, channel names or mentions into links.
func mrkdwn(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, truncate(text, MaxSectionText), false, true)
}

func section(text string) slack.Block { return slack.NewSectionBlock(mrkdwn(text), nil, nil) }

func contextBlock(text string) slack.Block { return slack.NewContextBlock("", mrkdwn(text)) }

func header(text string) slack.Block {
	return slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, plain(text, maxHeaderText), true, false))
}

// pack joins lines into as few section blocks as fit MaxSectionText, at
// most limit of them, and reports how many lines they hold. A line longer
// than a section on its own is truncated.
func pack(lines []string, sep string, limit int) (blocks []slack.Block, used int) {
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			blocks = append(blocks, section(cur.String()))
			cur.Reset()
		}
	}
	for _, l := range lines {
		l = truncate(l, MaxSectionText)
		if cur.Len() > 0 && utf16Len(cur.String())+utf16Len(sep)+utf16Len(l) > MaxSectionText {
			flush()
		}
		if cur.Len() == 0 && len(blocks) == limit {
			break
		}
		if cur.Len() > 0 {
			cur.WriteString(sep)
		}
		cur.WriteString(l)
		used++
	}
	flush()
	return blocks, used
}

// limitBlocks keeps at most MaxBlocks blocks, replacing the tail with a
// note when it has to drop some.
func limitBlocks(blocks []slack.Block) []slack.Block {
	if len(blocks) <= MaxBlocks {
		return blocks
	}
	dropped := len(blocks) - (MaxBlocks - 1)
	out := append([]slack.Block(nil), blocks[:MaxBlocks-1]...)
	return append(out, contextBlock(fmt.Sprintf("_…%d more blocks left out (Slack shows at most %d)._", dropped, MaxBlocks)))
}

// slackDate renders t as a Slack date token, shown in the reader's time
// zone, with UTC text for clients that cannot.
func slackDate(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// FormatDuration formats d for people, to two units at most: "3h12m",
// "2d5h", "45m", "1m30s", "12s". Negative durations format as "0s".
func FormatDuration(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	d = d.Truncate(time.Second)
	days := d / (24 * time.Hour)
	h := (d % (24 * time.Hour)) / time.Hour
	m := (d % time.Hour) / time.Minute
	s := (d % time.Minute) / time.Second
	two := func(a int64, ua string, b int64, ub string) string {
		if b == 0 {
			return fmt.Sprintf("%d%s", a, ua)
		}
		return fmt.Sprintf("%d%s%d%s", a, ua, b, ub)
	}
	switch {
	case days > 0:
		return two(int64(days), "d", int64(h), "h")
	case h > 0:
		return two(int64(h), "h", int64(m), "m")
	case m >= 10:
		return fmt.Sprintf("%dm", m)
	case m > 0:
		return two(int64(m), "m", int64(s), "s")
	}
	return fmt.Sprintf("%ds", s)
}
