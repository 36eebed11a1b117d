package laravel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// payload is the JSON envelope Laravel stores, after the structural checks
// of Encrypter::validPayload and ensureTagIsValid.
type payload struct {
	// iv, value and mac are the JSON strings as decoded; the CBC MAC is
	// computed over iv+value exactly as they appear here.
	iv, value, mac string
	// ivBytes is the decoded IV, of the cipher's IV length.
	ivBytes []byte
	// tag is the decoded 16-byte GCM tag; nil for CBC.
	tag []byte
}

// parsePayload checks s the way Laravel's getJsonPayload, validPayload
// and ensureTagIsValid do for cipher c, in the same order, and returns the
// envelope. It does not look at the MAC or decrypt anything. The error is
// a short static description for ReasonPayloadInvalid.
func parsePayload(s string, c cipherSpec) (payload, error) {
	// Laravel: json_decode(base64_decode($payload), true), non-strict.
	raw, _ := phpBase64Decode(s, false)
	members, ok := phpJSONObject(raw)
	if !ok {
		return payload{}, errors.New("not base64 of a JSON object")
	}
	var p payload
	for _, f := range []struct {
		name string
		dst  *string
	}{{"iv", &p.iv}, {"value", &p.value}, {"mac", &p.mac}} {
		v, kind := jsonMember(members, f.name)
		if kind != jsonString {
			return payload{}, fmt.Errorf("field %s is missing or not a string", f.name)
		}
		*f.dst = v
	}
	tag, kind := jsonMember(members, "tag")
	if kind == jsonOther {
		return payload{}, errors.New("field tag is not a string")
	}

	// validPayload: strlen(base64_decode($iv, true)) === iv length.
	iv, ok := phpBase64Decode(p.iv, true)
	if !ok {
		return payload{}, errors.New("iv is not base64")
	}
	if len(iv) != c.ivSize {
		return payload{}, fmt.Errorf("iv is %d bytes, %s needs %d", len(iv), c.name, c.ivSize)
	}
	p.ivBytes = iv

	// ensureTagIsValid, with $tag = empty($payload['tag']) ? null :
	// base64_decode($payload['tag']). PHP's empty() is true for "" and "0".
	hasTag := kind == jsonString && tag != "" && tag != "0"
	switch {
	case c.aead:
		var t []byte
		if hasTag {
			t, _ = phpBase64Decode(tag, false)
		}
		if len(t) != gcmTagSize {
			return payload{}, fmt.Errorf("tag is %d bytes, %s needs %d", len(t), c.name, gcmTagSize)
		}
		p.tag = t
	case hasTag:
		return payload{}, fmt.Errorf("tag given but %s takes none", c.name)
	}
	return p, nil
}

// AppearsEncrypted reports whether s looks like a Laravel payload, exactly
// as Laravel's static Encrypter::appearsEncrypted does (Laravel 12 and
// 13): s is strictly base64-decodable, decodes to a JSON object, and its
// iv, value and mac members are present and not null. Like Laravel it
// does not require them to be strings, does not look at tag, and does not
// check lengths, the MAC or any key: a true result does not mean Decrypt
// will succeed.
func AppearsEncrypted(s string) bool {
	raw, ok := phpBase64Decode(s, true)
	if !ok {
		return false
	}
	members, ok := phpJSONObject(raw)
	if !ok {
		return false
	}
	for _, name := range []string{"iv", "value", "mac"} {
		if _, kind := jsonMember(members, name); kind == jsonUnset {
			return false
		}
	}
	return true
}

type jsonKind int

const (
	jsonUnset  jsonKind = iota // absent or null: PHP's isset() is false
	jsonString                 // a string
	jsonOther                  // any other non-null value
)

// jsonMember returns the named member of a decoded JSON object and its
// kind; the string is set only for jsonString.
func jsonMember(members map[string]json.RawMessage, name string) (string, jsonKind) {
	raw := bytes.TrimSpace(members[name])
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
		return "", jsonUnset
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", jsonOther // unreachable: the object already decoded
		}
		return s, jsonString
	}
	return "", jsonOther
}
