package laravel

import (
	"errors"
	"fmt"
	"strings"
)

const base64KeyPrefix = "base64:"

// ParseKey turns one key as written in a Laravel .env (APP_KEY or an entry
// of APP_PREVIOUS_KEYS) into key bytes, the way Laravel's
// EncryptionServiceProvider does: a value starting with "base64:" is
// base64-decoded, any other value is the key itself, byte for byte. s is
// used as given; it is not trimmed.
//
// Like PHP's non-strict base64_decode, decoding skips bytes outside the
// base64 alphabet instead of failing, so that a key Laravel accepts gives
// the same bytes here; a damaged key shows up as a key of the wrong
// length, which NewEncrypter rejects.
//
// Errors are *Error: ReasonNoKey if s is empty, ReasonKeyInvalid if it is
// "base64:" followed by nothing that decodes to a byte. Neither s nor the
// key appears in the error.
func ParseKey(s string) ([]byte, error) {
	const op = "parse key"
	if s == "" {
		return nil, newError(op, ReasonNoKey, "key is empty")
	}
	rest, ok := strings.CutPrefix(s, base64KeyPrefix)
	if !ok {
		return []byte(s), nil
	}
	key, _ := phpBase64Decode(rest, false)
	if len(key) == 0 {
		return nil, newError(op, ReasonKeyInvalid, "base64 key decodes to nothing")
	}
	return key, nil
}

// KeysFromEnv parses the APP_KEY and APP_PREVIOUS_KEYS values of a Laravel
// .env with ParseKey. appKey is trimmed of surrounding white space.
// previousKeys is split on commas; each entry is trimmed and empty entries
// are skipped (Laravel itself drops empty entries but does not trim).
// The order of previous keys is kept: it is the order Decrypt tries them.
//
// It does not check key lengths; NewEncrypter does, knowing the cipher.
// Errors are *Error with the reasons of ParseKey; ReasonNoKey if APP_KEY
// is empty or blank. The message names the variable and, for previous
// keys, the 1-based position among the non-empty entries
// ("APP_PREVIOUS_KEYS entry 2"), never a key.
func KeysFromEnv(appKey, previousKeys string) (current []byte, previous [][]byte, err error) {
	const op = "load keys"
	current, err = ParseKey(strings.TrimSpace(appKey))
	if err != nil {
		return nil, nil, rewrap(op, "APP_KEY", err)
	}
	n := 0
	for entry := range strings.SplitSeq(previousKeys, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		n++
		key, err := ParseKey(entry)
		if err != nil {
			return nil, nil, rewrap(op, fmt.Sprintf("APP_PREVIOUS_KEYS entry %d", n), err)
		}
		previous = append(previous, key)
	}
	return current, previous, nil
}

// rewrap re-labels an *Error from ParseKey with the caller's operation
// and the name of the key, keeping its reason and detail.
func rewrap(op, name string, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return fmt.Errorf("%s: %s: %w", op, name, err)
	}
	return &Error{Op: op, Reason: e.Reason, Err: fmt.Errorf("%s: %w", name, e.Err)}
}
