package laravel

import (
	"errors"
	"fmt"
)

// Reason classifies why an operation of this package failed. The set is
// closed and small so that it can be used directly as a metric label.
type Reason string

const (
	// ReasonMACInvalid means no configured key verified the payload: the
	// HMAC for CBC ciphers, the authentication tag for GCM ciphers. It is
	// what a wrong or rotated-away APP_KEY, or a tampered payload, looks like.
	ReasonMACInvalid Reason = "mac_invalid"
	// ReasonPayloadInvalid means the value is not a well-formed Laravel
	// payload for the configured cipher: not base64 of a JSON object with
	// string iv, value and mac, an IV of the wrong length, a tag where the
	// cipher takes none (or a malformed one where it needs one), a
	// ciphertext that is not whole blocks or whose padding is broken, or a
	// plaintext that cannot be unserialized as the requested Format asks.
	ReasonPayloadInvalid Reason = "payload_invalid"
	// ReasonNoKey means no key is configured: APP_KEY is empty, or the
	// Encrypter is the zero value.
	ReasonNoKey Reason = "no_key"
	// ReasonKeyInvalid means the key configuration cannot be used: an
	// unsupported cipher, or a key whose length does not match the cipher.
	// Like Laravel's own "Unsupported cipher or incorrect key length", it
	// covers both. Only constructors and key parsing return it.
	ReasonKeyInvalid Reason = "key_invalid"
)

// Reasons returns every Reason, so that metrics can pre-initialise one
// series per label value. The slice is freshly allocated on each call.
func Reasons() []Reason {
	return []Reason{ReasonMACInvalid, ReasonPayloadInvalid, ReasonNoKey, ReasonKeyInvalid}
}

// Error is the error returned by every function of this package that can
// fail because of its input. Its message never contains a key, a
// plaintext or the payload: only the operation, the reason and a short
// static description (with lengths and positions where useful).
type Error struct {
	// Op is the failed operation, e.g. "decrypt payload".
	Op string
	// Reason classifies the failure; see the Reason constants.
	Reason Reason
	// Err describes the failure in more detail; it may be nil.
	Err error
}

// Error renders "op: reason: detail".
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Op + ": " + string(e.Reason)
	}
	return e.Op + ": " + string(e.Reason) + ": " + e.Err.Error()
}

// Unwrap returns the detailed cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of the first *Error in err's chain, or ""
// if err is nil or was not produced by this package.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// newError builds an *Error whose detail is formatted from format and
// args. Callers must never pass a key, plaintext or payload in args.
func newError(op string, r Reason, format string, args ...any) *Error {
	return &Error{Op: op, Reason: r, Err: fmt.Errorf(format, args...)}
}
