package redact_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tenantdrift/tenantdrift/internal/redact"
)

func TestRedactor(t *testing.T) {
	cases := []struct {
		name, dsn, text, want string
	}{
		{"url", "postgres://u:p%40ss-w0rd@db/x", "dial postgres://u:p%40ss-w0rd@db/x failed, pw p@ss-w0rd", "dial <redacted> failed, pw <redacted>"},
		{"keyword", "host=db password=hunter2-hunter2 user=u", "password=hunter2-hunter2", "password=<redacted>"},
		{"quoted keyword", "host=db password='sp ace-secret' user=u", "got sp ace-secret", "got <redacted>"},
		{"short values are left alone", "postgres://u:abc@db/x", "abc is short", "abc is short"},
		{"empty", "", "nothing", "nothing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r redact.Redactor
			r.AddDSN(tc.dsn)
			assert.Equal(t, tc.want, r.String(tc.text))
		})
	}
}

func TestWriter(t *testing.T) {
	var r redact.Redactor
	var buf bytes.Buffer
	w := r.Writer(&buf)
	r.Add("late-added-secret")
	n, err := w.Write([]byte("x late-added-secret y\n"))
	assert.NoError(t, err)
	assert.Equal(t, len("x late-added-secret y\n"), n)
	assert.Equal(t, "x <redacted> y\n", buf.String())
}
