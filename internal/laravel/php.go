package laravel

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// This file reproduces the few PHP built-ins whose exact behaviour decides
// whether Laravel accepts a payload: base64_decode, json_decode and the
// string case of serialize/unserialize. Each was checked against PHP 8.2.

// phpBase64Decode behaves like PHP's base64_decode($s, $strict).
//
// Non-strict mode (used by Laravel for the outer payload, the GCM tag,
// openssl_decrypt's input and "base64:" keys) skips every byte outside
// the alphabet, including '=', and never fails. Strict mode (used for the
// IV check and by appearsEncrypted) skips only \t, \n, \r and space,
// rejects any other byte outside the alphabet or any data after padding,
// rejects a truncated final group of one character, and accepts either no
// padding or exactly the right amount. Neither mode checks that unused
// trailing bits are zero.
func phpBase64Decode(s string, strict bool) ([]byte, bool) {
	out := make([]byte, 0, len(s)/4*3+3)
	var cur byte
	i, padding := 0, 0
	for k := 0; k < len(s); k++ {
		c := s[k]
		if c == '=' {
			padding++
			continue
		}
		v, ok := base64Value(c)
		if !ok {
			if !strict || c == '\t' || c == '\n' || c == '\r' || c == ' ' {
				continue
			}
			return nil, false
		}
		if strict && padding > 0 {
			return nil, false
		}
		switch i % 4 {
		case 0:
			cur = v << 2
		case 1:
			out = append(out, cur|v>>4)
			cur = (v & 0x0f) << 4
		case 2:
			out = append(out, cur|v>>2)
			cur = (v & 0x03) << 6
		case 3:
			out = append(out, cur|v)
		}
		i++
	}
	if strict && i%4 == 1 {
		return nil, false
	}
	if strict && padding > 0 && (padding > 2 || (i+padding)%4 != 0) {
		return nil, false
	}
	return out, true
}

// base64Value maps a byte of the standard base64 alphabet to its value.
func base64Value(c byte) (byte, bool) {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A', true
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26, true
	case c >= '0' && c <= '9':
		return c - '0' + 52, true
	case c == '+':
		return 62, true
	case c == '/':
		return 63, true
	}
	return 0, false
}

// phpJSONMaxContainers is how deeply arrays and objects may nest under
// json_decode's default depth of 512 (PHP counts the innermost value as a
// level, so 511 containers are accepted and 512 are not).
const phpJSONMaxContainers = 511

// phpJSONObject decodes b like PHP's json_decode($b, true) and returns the
// top-level object's members, undecoded. ok is false where json_decode
// would not return an array with string keys: invalid JSON, invalid UTF-8,
// an unpaired UTF-16 surrogate escape, nesting deeper than PHP allows, or
// a top-level value that is not an object. (A top-level JSON list is an
// array in PHP too, but it cannot hold the keys a payload needs.) As in
// PHP, a duplicated key keeps its last value.
func phpJSONObject(b []byte) (members map[string]json.RawMessage, ok bool) {
	if !utf8.Valid(b) || !phpJSONLimitsOK(b) {
		return nil, false
	}
	if err := json.Unmarshal(b, &members); err != nil || members == nil {
		return nil, false
	}
	return members, true
}

// phpJSONLimitsOK reports whether b stays within PHP's nesting limit and
// contains no unpaired surrogate escape. It assumes nothing about b's
// validity; encoding/json judges that afterwards.
func phpJSONLimitsOK(b []byte) bool {
	depth := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			switch c {
			case '"':
				inString = true
			case '[', '{':
				depth++
				if depth > phpJSONMaxContainers {
					return false
				}
			case ']', '}':
				depth--
			}
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			r, ok := unicodeEscape(b, i)
			if !ok {
				i++ // skip the escaped byte
				continue
			}
			i += 5
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return false
			case r >= 0xD800 && r <= 0xDBFF:
				low, ok := unicodeEscape(b, i+1)
				if !ok || low < 0xDC00 || low > 0xDFFF {
					return false
				}
				i += 6
			}
		}
	}
	return true
}

// unicodeEscape decodes a \uXXXX escape starting at b[i].
func unicodeEscape(b []byte, i int) (rune, bool) {
	if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}

// phpSerializeString returns PHP's serialize() of the string s:
// s:<length in bytes>:"<bytes>"; with no escaping.
func phpSerializeString(s []byte) []byte {
	out := make([]byte, 0, len(s)+16)
	out = append(out, "s:"...)
	out = strconv.AppendInt(out, int64(len(s)), 10)
	out = append(out, ':', '"')
	out = append(out, s...)
	return append(out, '"', ';')
}

// phpUnserializeString parses b as exactly one serialized PHP string,
// s:<N>:"<N bytes>";, and returns the bytes. N is one or more decimal
// digits (PHP accepts leading zeros, not a sign). Unlike PHP 8.2, trailing
// bytes after the final ';' are rejected, and nothing but the lower-case
// s: form is accepted: no other type, and not the escaped S: form that
// serialize() never writes.
func phpUnserializeString(b []byte) ([]byte, bool) {
	if len(b) < len(`s:0:"";`) || b[0] != 's' || b[1] != ':' {
		return nil, false
	}
	i := 2
	n := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int(b[i]-'0')
		if n > len(b) {
			return nil, false
		}
	}
	if i == 2 || i+2 > len(b) || b[i] != ':' || b[i+1] != '"' {
		return nil, false
	}
	start := i + 2
	// The body must be followed by exactly `";` and nothing else.
	if len(b)-start != n+2 || b[start+n] != '"' || b[start+n+1] != ';' {
		return nil, false
	}
	return b[start : start+n], true
}
