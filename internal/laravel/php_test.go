package laravel

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The expectations below were checked against PHP 8.2.

func TestPHPBase64Decode(t *testing.T) {
	tests := []struct {
		in        string
		strict    string // "" with strictFail
		strictErr bool
		lenient   string
	}{
		{in: "", strict: "", lenient: ""},
		{in: "YQ==", strict: "a", lenient: "a"},
		{in: "YQ", strict: "a", lenient: "a"},                   // missing padding is fine
		{in: "YQ=", strictErr: true, lenient: "a"},              // wrong amount of padding
		{in: "YQ===", strictErr: true, lenient: "a"},            // too much padding
		{in: "Y", strictErr: true, lenient: ""},                 // one char in the last group
		{in: "YQ==YQ==", strictErr: true, lenient: "a\x06\x10"}, // data after padding
		{in: "YQ== ", strict: "a", lenient: "a"},                // whitespace after padding
		{in: " Y\tQ\r\n", strict: "a", lenient: "a"},            // \t \n \r and space are skipped
		{in: "Y\vQ", strictErr: true, lenient: "a"},             // \v is not
		{in: "YR==", strict: "a", lenient: "a"},                 // non-zero trailing bits are ignored
		{in: "a!b", strictErr: true, lenient: "i"},
		{in: "=", strictErr: true, lenient: ""},
		{in: "====", strictErr: true, lenient: ""},
		{in: "/+/+", strict: "\xff\xef\xfe", lenient: "\xff\xef\xfe"},
		{in: "-_-_", strictErr: true, lenient: ""}, // URL alphabet is not base64 here
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := phpBase64Decode(tc.in, true)
			if tc.strictErr {
				assert.False(t, ok)
			} else {
				assert.True(t, ok)
				assert.Equal(t, tc.strict, string(got))
			}
			got, ok = phpBase64Decode(tc.in, false)
			assert.True(t, ok, "non-strict never fails")
			assert.Equal(t, tc.lenient, string(got))
		})
	}
}

func TestPHPJSONObject(t *testing.T) {
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"object", `{"a":"b"}`, true},
		{"empty object", `{}`, true},
		{"whitespace", " \t\r\n{ \"a\" : 1 } \n", true},
		{"null", `null`, false},
		{"list", `["a"]`, false},
		{"string", `"a"`, false},
		{"empty", ``, false},
		{"trailing data", `{} x`, false},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", false},
		{"lone high surrogate", `{"a":"\ud800"}`, false},
		{"high surrogate then other escape", `{"a":"\ud800\u0041"}`, false},
		{"lone low surrogate", `{"a":"\udc00"}`, false},
		{"surrogate pair", `{"a":"\ud800\udc00"}`, true},
		{"escaped backslash before u", `{"a":"\\ud800"}`, true},
		{"511 containers", `{"a":` + nested(510) + `}`, true},
		{"512 containers", `{"a":` + nested(511) + `}`, false},
		{"nesting inside strings does not count", `{"a":"` + strings.Repeat("[", 600) + `"}`, true},
		{"huge number", `{"a":1e400}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := phpJSONObject([]byte(tc.in))
			assert.Equal(t, tc.ok, ok)
		})
	}
}

func TestPHPJSONObjectDuplicateKeys(t *testing.T) {
	m, ok := phpJSONObject([]byte(`{"iv":"a","iv":null}`))
	assert.True(t, ok)
	_, kind := jsonMember(m, "iv")
	assert.Equal(t, jsonUnset, kind, "the last duplicate wins, as in PHP")
}

func TestPHPSerializeString(t *testing.T) {
	assert.Equal(t, `s:10:"secret123!";`, string(phpSerializeString([]byte("secret123!"))))
	assert.Equal(t, `s:0:"";`, string(phpSerializeString(nil)))
	assert.Equal(t, `s:6:"密码";`, string(phpSerializeString([]byte("密码"))), "length in bytes")
	assert.Equal(t, "s:3:\"a\"\x00\";", string(phpSerializeString([]byte("a\"\x00"))), "no escaping")
}
