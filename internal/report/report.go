// Package report renders an audit report as a terminal table, a versioned
// JSON document or Markdown. Rendering never fails on odd data: control
// characters in registry values are escaped so a slug cannot rewrite the
// operator's terminal.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/audit"
	"github.com/tenantdrift/tenantdrift/internal/check"
)

// Formats accepted by Write.
const (
	FormatTable    = "table"
	FormatJSON     = "json"
	FormatMarkdown = "markdown"
)

// SchemaVersion is the version of the JSON document; it changes only when
// a field is removed or changes meaning.
const SchemaVersion = 1

// Tool identifies the program in the JSON document.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Write renders rep in format to w. It returns an error only for an unknown
// format or a failed write.
func Write(w io.Writer, format string, rep *audit.Report, tool Tool) error {
	switch format {
	case FormatTable, "":
		return writeTable(w, rep)
	case FormatJSON:
		return writeJSON(w, rep, tool)
	case FormatMarkdown:
		return writeMarkdown(w, rep)
	}
	return fmt.Errorf("unknown format %q (use table, json or markdown)", format)
}

// Document is the JSON form of a report (schema_version 1).
type Document struct {
	SchemaVersion int             `json:"schema_version"`
	Tool          Tool            `json:"tool"`
	StartedAt     string          `json:"started_at"`
	FinishedAt    string          `json:"finished_at"`
	Complete      bool            `json:"complete"`
	Summary       Summary         `json:"summary"`
	Checks        []CheckSummary  `json:"checks"`
	Findings      []check.Finding `json:"findings"`
}

// Summary counts a report.
type Summary struct {
	Tenants       int `json:"tenants"`
	Findings      int `json:"findings"`
	Critical      int `json:"critical"`
	Warning       int `json:"warning"`
	Info          int `json:"info"`
	ChecksRun     int `json:"checks_run"`
	ChecksErrored int `json:"checks_errored"`
}

// CheckSummary is one check's line in the document.
type CheckSummary struct {
	Name            string  `json:"name"`
	Status          string  `json:"status"`
	Findings        int     `json:"findings"`
	DurationSeconds float64 `json:"duration_seconds"`
	Error           string  `json:"error"`
}

// NewDocument builds the JSON document of rep.
func NewDocument(rep *audit.Report, tool Tool) Document {
	doc := Document{
		SchemaVersion: SchemaVersion,
		Tool:          tool,
		StartedAt:     rep.StartedAt.UTC().Format(time.RFC3339),
		FinishedAt:    rep.FinishedAt.UTC().Format(time.RFC3339),
		Complete:      rep.Complete(),
		Summary: Summary{
			Tenants:  max(rep.Tenants, 0),
			Findings: len(rep.Findings),
			Critical: rep.CountSeverity(config.SeverityCritical),
			Warning:  rep.CountSeverity(config.SeverityWarning),
			Info:     rep.CountSeverity(config.SeverityInfo),
		},
		Checks:   []CheckSummary{},
		Findings: rep.Findings,
	}
	if doc.Findings == nil {
		doc.Findings = []check.Finding{}
	}
	for _, res := range rep.Results {
		cs := CheckSummary{Name: res.Name, Status: res.Status, Findings: len(res.Findings), DurationSeconds: res.Duration.Seconds()}
		if res.Err != nil {
			cs.Error = res.Err.Error()
			doc.Summary.ChecksErrored++
		} else {
			doc.Summary.ChecksRun++
		}
		doc.Checks = append(doc.Checks, cs)
	}
	return doc
}

func writeJSON(w io.Writer, rep *audit.Report, tool Tool) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(NewDocument(rep, tool))
}

// clean makes a registry value safe and short for a table cell.
func clean(s string, limit int) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n >= limit {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError:
			b.WriteRune(utf8.RuneError)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}

// Detail is the short "what is wrong" of a finding, for tables.
func Detail(f check.Finding) string {
	switch {
	case f.Field != "":
		return fmt.Sprintf("%s: tenants=%s tenant_databases=%s", f.Field, quoteOrDash(f.Expected), quoteOrDash(f.Actual))
	case f.Check == config.CheckRegistryDuplicate && f.Expected != "":
		return fmt.Sprintf("%s rows: %s", f.Actual, f.Reason)
	case f.Actual != "":
		return fmt.Sprintf("%s: %s", f.Reason, f.Actual)
	}
	return f.Reason
}

func quoteOrDash(s string) string {
	if s == "" {
		return "NULL/empty"
	}
	return fmt.Sprintf("%q", s)
}

func writeTable(w io.Writer, rep *audit.Report) error {
	var b strings.Builder
	tenants := "? tenants"
	if rep.Tenants >= 0 {
		tenants = count(rep.Tenants, "tenant")
	}
	fmt.Fprintf(&b, "tenantdrift audit: %s, %s, %s (%d critical, %d warning, %d info)\n\n",
		tenants, count(len(rep.Results), "check"), count(len(rep.Findings), "finding"),
		rep.CountSeverity(config.SeverityCritical), rep.CountSeverity(config.SeverityWarning), rep.CountSeverity(config.SeverityInfo))
	if len(rep.Findings) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tCHECK\tTENANT\tDATABASE\tDETAIL")
		for _, f := range rep.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Severity, f.Check, clean(f.TenantSlug, 32), clean(f.DatabaseName, 32), clean(Detail(f), 120))
		}
		_ = tw.Flush() // into a strings.Builder: cannot fail
		b.WriteString("\n")
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tFINDINGS\tTIME")
	for _, res := range rep.Results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", res.Name, res.Status, len(res.Findings), res.Duration.Round(time.Millisecond))
	}
	_ = tw.Flush() // into a strings.Builder: cannot fail
	// One line per distinct cause: when the audit could not start, every
	// check failed for the same reason.
	var causes []string
	byCause := map[string][]string{}
	for _, res := range rep.Errored() {
		msg := res.Err.Error()
		if _, ok := byCause[msg]; !ok {
			causes = append(causes, msg)
		}
		byCause[msg] = append(byCause[msg], res.Name)
	}
	for _, msg := range causes {
		names := byCause[msg]
		who := "check " + names[0]
		if len(names) == len(rep.Results) && len(names) > 1 {
			who = "the audit"
		} else if len(names) > 1 {
			who = "checks " + strings.Join(names, ", ")
		}
		fmt.Fprintf(&b, "\nerror: %s did not complete: %s\n", who, clean(msg, 400))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdCell(s string) string {
	s = clean(s, 200)
	return strings.ReplaceAll(s, "|", `\|`)
}

func writeMarkdown(w io.Writer, rep *audit.Report) error {
	var b strings.Builder
	b.WriteString("## tenantdrift audit\n\n")
	tenants := "unknown"
	if rep.Tenants >= 0 {
		tenants = fmt.Sprint(rep.Tenants)
	}
	fmt.Fprintf(&b, "%s tenants, %d findings: **%d critical**, %d warning, %d info. Complete: %t.\n\n",
		tenants, len(rep.Findings), rep.CountSeverity(config.SeverityCritical), rep.CountSeverity(config.SeverityWarning),
		rep.CountSeverity(config.SeverityInfo), rep.Complete())
	b.WriteString("| check | status | findings | time | error |\n|---|---|---|---|---|\n")
	for _, res := range rep.Results {
		e := ""
		if res.Err != nil {
			e = res.Err.Error()
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s |\n", res.Name, res.Status, len(res.Findings), res.Duration.Round(time.Millisecond), mdCell(e))
	}
	if len(rep.Findings) > 0 {
		b.WriteString("\n| severity | check | tenant | database | detail | message |\n|---|---|---|---|---|---|\n")
		for _, f := range rep.Findings {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", f.Severity, f.Check, mdCell(f.TenantSlug), mdCell(f.DatabaseName), mdCell(Detail(f)), mdCell(f.Message))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// count is "1 check", "2 checks".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
