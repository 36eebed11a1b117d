// Package redact keeps secrets out of everything tenantdrift writes. A
// Redactor knows the secret values of this process (the landlord DSN and its
// password, later keys and tokens) and replaces them wherever they appear;
// Writer applies it to a stream, so logs and reports are covered even when
// a library error quotes a secret back.
package redact

import (
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Mask replaces every secret.
const Mask = "<redacted>"

// Redactor replaces known secret values in text. It is safe for concurrent
// use; secrets can be added at any time.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// Add registers secret values. Values shorter than 4 bytes are ignored:
// masking them would mangle ordinary text while protecting little.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) >= 4 && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
	// Longest first, so a DSN is masked whole before its password.
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
}

// AddDSN registers a connection string and the password inside it, in both
// URL and keyword/value forms, raw and URL-decoded.
func (r *Redactor) AddDSN(dsn string) {
	if dsn == "" {
		return
	}
	r.Add(dsn)
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			r.Add(pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	for _, field := range strings.Fields(dsn) {
		if k, v, ok := strings.Cut(field, "="); ok && strings.EqualFold(k, "password") {
			r.Add(strings.Trim(v, "'"))
		}
	}
	if i := strings.Index(dsn, "password='"); i >= 0 {
		rest := dsn[i+len("password='"):]
		if j := strings.IndexByte(rest, '\''); j >= 0 {
			r.Add(rest[:j])
		}
	}
}

// String returns s with every known secret replaced by Mask.
func (r *Redactor) String(s string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	return s
}

// Writer returns a writer that redacts each Write before passing it on.
// Callers should write whole lines or documents at a time (slog handlers
// and the report renderers do), so a secret is never split across writes.
func (r *Redactor) Writer(w io.Writer) io.Writer { return &writer{r: r, w: w} }

type writer struct {
	r *Redactor
	w io.Writer
}

func (w *writer) Write(p []byte) (int, error) {
	out := w.r.String(string(p))
	if _, err := io.WriteString(w.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}
