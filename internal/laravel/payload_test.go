package laravel

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAppearsEncrypted mirrors Laravel's Encrypter::appearsEncrypted; every
// expectation was checked against Laravel 13 on PHP 8.2.
func TestAppearsEncrypted(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"string members", b64(`{"iv":"a","value":"b","mac":"c"}`), true},
		{"empty strings", b64(`{"iv":"","value":"","mac":""}`), true},
		{"non-string members (isset only)", b64(`{"iv":1,"value":false,"mac":[]}`), true},
		{"tag is not looked at", b64(`{"iv":"a","value":"b","mac":"c","tag":5}`), true},
		{"unpadded base64", strings.TrimRight(b64(`{"iv":"a","value":"b","mac":"c"}`), "="), true},
		{"line-wrapped base64", b64(`{"iv":"a","value":"b","mac":"c"}`)[:8] + "\r\n" + b64(`{"iv":"a","value":"b","mac":"c"}`)[8:], true},
		{"escaped slashes", b64(`{"iv":"a\/b","value":"b","mac":"c"}`), true},
		{"mac missing", b64(`{"iv":"x","value":"y"}`), false},
		{"mac null", b64(`{"iv":"x","value":"y","mac":null}`), false},
		{"last duplicate is null", b64(`{"iv":"a","iv":null,"value":"b","mac":"c"}`), false},
		{"keys are case-sensitive", b64(`{"IV":"a","value":"b","mac":"c"}`), false},
		{"list", b64(`["iv","value","mac"]`), false},
		{"JSON null", b64(`null`), false},
		{"truncated JSON", "eyJpdiI6IjJYYUExcUJQM0R1", false},
		{"not JSON", b64("not json"), false},
		{"invalid UTF-8", b64("{\"iv\":\"\xff\",\"value\":\"b\",\"mac\":\"c\"}"), false},
		{"unpaired surrogate", b64(`{"iv":"\udc00","value":"b","mac":"c"}`), false},
		{"too deep", b64(`{"iv":"a","value":"b","mac":"c","x":` + strings.Repeat("[", 511) + strings.Repeat("]", 511) + `}`), false},
		{"junk in base64", b64(`{"iv":"a","value":"b","mac":"c"}`) + "!", false},
		{"data after padding", b64(`{"iv":"a","value":"b","mac":"c"}`) + "=A", false},
		{"raw JSON", `{"iv":"a","value":"b","mac":"c"}`, false},
		{"plain password", "Devkota@1?", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, AppearsEncrypted(tc.in))
		})
	}
}
