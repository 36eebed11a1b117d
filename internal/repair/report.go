package repair

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Formats of a repair report.
const (
	FormatTable = "table"
	FormatJSON  = "json"
)

// Report is what one repair run planned and did.
type Report struct {
	// Applying says the run could write (repair --apply, the daemon).
	Applying     bool
	Actions      []Action
	Unrepairable Unrepairable
	// Breaker is the open breaker's reason, or "".
	Breaker string
}

// Counts returns how many actions ended in each status.
func (r *Report) Counts() map[string]int {
	out := map[string]int{}
	for _, a := range r.Actions {
		out[a.Status]++
	}
	return out
}

type jsonReport struct {
	SchemaVersion int                       `json:"schema_version"`
	Apply         bool                      `json:"apply"`
	Actions       []Action                  `json:"actions"`
	Unrepairable  map[string]map[string]int `json:"unrepairable"`
	Breaker       string                    `json:"breaker,omitempty"`
}

// Write renders r in format (table or json). Passwords are masked in the
// actions already; nothing else can hold one.
func Write(w io.Writer, format string, r *Report) error {
	switch format {
	case FormatJSON:
		actions := r.Actions
		if actions == nil {
			actions = []Action{}
		}
		un := map[string]map[string]int(r.Unrepairable)
		if un == nil {
			un = map[string]map[string]int{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(jsonReport{SchemaVersion: 1, Apply: r.Applying, Actions: actions, Unrepairable: un, Breaker: r.Breaker})
	case FormatTable:
		return writeText(w, r)
	}
	return fmt.Errorf("unknown format %q (use table or json)", format)
}

func symbol(action string) string {
	if action == ActionInsertRow {
		return "+"
	}
	return "~"
}

func show(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

// who names a tenant by slug and id, quoted so control characters in a
// slug cannot reach the terminal.
func who(a Action) string {
	if a.TenantSlug == "" {
		return strconv.Quote(a.TenantID)
	}
	return strconv.Quote(a.TenantSlug) + " (" + strconv.Quote(a.TenantID) + ")"
}

func writeText(w io.Writer, r *Report) error {
	var b strings.Builder
	verb := "plan"
	if r.Applying {
		verb = "apply"
	}
	fmt.Fprintf(&b, "tenantdrift repair (%s): %s\n", verb, plural(len(r.Actions), "action"))
	if r.Breaker != "" {
		fmt.Fprintf(&b, "\n! %s\n", r.Breaker)
	}
	for _, a := range r.Actions {
		fmt.Fprintf(&b, "\n%s %s  %s  tenant %s\n", symbol(a.Action), a.Action, a.Check, who(a))
		if a.Action == ActionInsertRow {
			fmt.Fprintf(&b, "    insert into %s:\n", a.Table)
			for _, kv := range a.values {
				fmt.Fprintf(&b, "      + %s = %s\n", kv[0], strconv.Quote(kv[1]))
			}
		} else {
			fmt.Fprintf(&b, "    %s.%s: %s -> %s\n", a.Table, a.Column, show(a.Before), show(a.After))
		}
		status := a.Status
		if a.Reason != "" {
			status += ": " + a.Reason
		}
		fmt.Fprintf(&b, "    %s\n", status)
	}
	if len(r.Unrepairable) > 0 {
		b.WriteString("\nNot repaired automatically:\n")
		checks := make([]string, 0, len(r.Unrepairable))
		for c := range r.Unrepairable {
			checks = append(checks, c)
		}
		slices.Sort(checks)
		for _, c := range checks {
			whys := make([]string, 0, len(r.Unrepairable[c]))
			for why := range r.Unrepairable[c] {
				whys = append(whys, why)
			}
			slices.SortFunc(whys, func(x, y string) int {
				return cmp.Or(cmp.Compare(r.Unrepairable[c][y], r.Unrepairable[c][x]), cmp.Compare(x, y))
			})
			for _, why := range whys {
				fmt.Fprintf(&b, "  %-26s %4d  %s\n", c, r.Unrepairable[c][why], why)
			}
		}
	}
	n := r.Counts()
	fmt.Fprintf(&b, "\n%d applied, %d planned, %d skipped, %d conflict, %d failed.\n",
		n[StatusApplied], n[StatusPlanned], n[StatusSkipped], n[StatusConflict], n[StatusFailed])
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
