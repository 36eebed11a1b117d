// Package laravel reads and writes values encrypted by Laravel's
// Illuminate\Encryption\Encrypter (the Crypt facade, encrypted model
// casts), using only the standard library.
//
// A Laravel payload is standard base64 of the JSON object
// {"iv","value","mac","tag"}. With aes-128-cbc or aes-256-cbc, value is
// base64 of the PKCS#7-padded CBC ciphertext and mac is the lower-case hex
// HMAC-SHA256, under the key, of the base64 strings iv and value
// concatenated; tag is empty. With aes-128-gcm or aes-256-gcm, iv is a
// 12-byte nonce, tag is base64 of the 16-byte authentication tag and mac
// is empty.
//
// Decryption follows Laravel 13 step by step, including its lenient PHP
// base64 and JSON handling: the payload's shape is checked first, then the
// current key and the previous keys are tried in order, and the first key
// that authenticates the payload (its HMAC for CBC, its tag for GCM) is the
// one that decrypts it. For CBC nothing is decrypted before a MAC has
// verified. Failures are *Error values carrying a Reason from a small
// closed set, suitable as a metric label; no error message contains a key,
// a plaintext or a payload.
package laravel

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

const (
	cbcIVSize  = aes.BlockSize
	gcmIVSize  = 12
	gcmTagSize = 16
)

// cipherSpec describes one of Laravel's supported ciphers.
type cipherSpec struct {
	name    string // Laravel's lower-case name
	keySize int
	ivSize  int
	aead    bool
}

// lookupCipher finds a cipher by name, ignoring ASCII case like PHP's
// strtolower.
func lookupCipher(name string) (cipherSpec, bool) {
	switch asciiLower(name) {
	case "aes-128-cbc":
		return cipherSpec{name: "aes-128-cbc", keySize: 16, ivSize: cbcIVSize}, true
	case "aes-256-cbc":
		return cipherSpec{name: "aes-256-cbc", keySize: 32, ivSize: cbcIVSize}, true
	case "aes-128-gcm":
		return cipherSpec{name: "aes-128-gcm", keySize: 16, ivSize: gcmIVSize, aead: true}, true
	case "aes-256-gcm":
		return cipherSpec{name: "aes-256-gcm", keySize: 32, ivSize: gcmIVSize, aead: true}, true
	}
	return cipherSpec{}, false
}

// asciiLower lower-cases ASCII letters only, as PHP 8's strtolower does.
// (strings.ToLower and strings.EqualFold also fold some non-ASCII runes
// onto ASCII letters, e.g. U+017F onto 's'.)
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Encrypter encrypts and decrypts Laravel payloads for one cipher with a
// current key and, for decryption only, previous keys. It is safe for
// concurrent use. The zero value has no key: its methods fail with
// ReasonNoKey.
type Encrypter struct {
	spec cipherSpec
	keys [][]byte // the current key first, then the previous keys in order
}

// NewEncrypter returns an Encrypter for cipher (aes-128-cbc, aes-256-cbc,
// aes-128-gcm or aes-256-gcm, in any ASCII case, like Laravel's "cipher"
// setting) with the current key and, for decryption after a key rotation,
// previous keys in the order Decrypt tries them. Keys are raw bytes, as
// ParseKey or KeysFromEnv return them; they are copied.
//
// Errors are *Error: ReasonKeyInvalid for an unsupported cipher or a key
// whose length is not the cipher's (16 bytes for the aes-128 ciphers, 32
// for aes-256), naming the key as "current key" or "previous key N"
// (1-based); ReasonNoKey if the current key is empty. Keys never appear in
// the error.
func NewEncrypter(cipherName string, key []byte, previous ...[]byte) (*Encrypter, error) {
	const op = "create encrypter"
	spec, ok := lookupCipher(cipherName)
	if !ok {
		return nil, newError(op, ReasonKeyInvalid, "unsupported cipher (supported: aes-128-cbc, aes-256-cbc, aes-128-gcm, aes-256-gcm)")
	}
	if len(key) == 0 {
		return nil, newError(op, ReasonNoKey, "current key is empty")
	}
	e := &Encrypter{spec: spec, keys: make([][]byte, 0, 1+len(previous))}
	for i, k := range append([][]byte{key}, previous...) {
		name := "current key"
		if i > 0 {
			name = fmt.Sprintf("previous key %d", i)
		}
		if len(k) != spec.keySize {
			return nil, newError(op, ReasonKeyInvalid, "%s is %d bytes, %s needs %d", name, len(k), spec.name, spec.keySize)
		}
		e.keys = append(e.keys, append([]byte(nil), k...))
	}
	return e, nil
}

// Cipher returns the cipher's lower-case Laravel name, or "" for the zero
// Encrypter.
func (e *Encrypter) Cipher() string {
	if e == nil {
		return ""
	}
	return e.spec.name
}

// Decrypt decrypts a payload as Laravel's decrypt() and decryptString()
// do, then shapes the plaintext as f says (see Format: FormatRaw is
// decryptString, FormatPHPSerialized is decrypt of a string value).
//
// The payload's shape is checked first (base64 of a JSON object with
// string iv, value and mac, an IV of the cipher's length, a 16-byte tag
// for GCM and no tag for CBC). Then the keys are tried in order, current
// first: for CBC, the first key whose HMAC matches mac, compared in
// constant time, is the only key used to decrypt; for GCM, the first key
// under which the tag verifies gives the plaintext.
//
// Errors are *Error with reason ReasonNoKey (zero Encrypter),
// ReasonPayloadInvalid (bad shape, ciphertext not whole blocks, bad
// padding, or plaintext not matching f) or ReasonMACInvalid (no key
// authenticates the payload: wrong key, or tampering). An f that is not
// one of the Format constants is a programming error, reported by a plain
// error. Messages never include a key, the plaintext or the payload.
func (e *Encrypter) Decrypt(payload string, f Format) ([]byte, error) {
	const op = "decrypt payload"
	if e == nil || len(e.keys) == 0 {
		return nil, newError(op, ReasonNoKey, "no key configured")
	}
	if !f.valid() {
		return nil, fmt.Errorf("%s: unknown format %d", op, int(f))
	}
	p, err := parsePayload(payload, e.spec)
	if err != nil {
		return nil, &Error{Op: op, Reason: ReasonPayloadInvalid, Err: err}
	}
	var plaintext []byte
	if e.spec.aead {
		plaintext, err = e.openGCM(p)
	} else {
		plaintext, err = e.openCBC(p)
	}
	if err != nil {
		return nil, err
	}
	out, ok := f.apply(plaintext)
	if !ok {
		return nil, newError(op, ReasonPayloadInvalid, "plaintext is not a PHP-serialized string")
	}
	return out, nil
}

// openCBC authenticates p with the first key whose HMAC matches and only
// then decrypts with that key.
func (e *Encrypter) openCBC(p payload) ([]byte, error) {
	const op = "decrypt payload"
	var key []byte
	// Every key's MAC is computed, as in Laravel 13, so the time taken does
	// not reveal which key matched.
	for _, k := range e.keys {
		if hmac.Equal([]byte(cbcMAC(k, p.iv, p.value)), []byte(p.mac)) && key == nil {
			key = k
		}
	}
	if key == nil {
		return nil, newError(op, ReasonMACInvalid, "no configured key verifies the MAC")
	}
	// openssl_decrypt() base64-decodes its input non-strictly.
	ct, _ := phpBase64Decode(p.value, false)
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, newError(op, ReasonPayloadInvalid, "ciphertext is %d bytes, not a positive multiple of %d", len(ct), aes.BlockSize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, newError(op, ReasonPayloadInvalid, "create AES cipher: %w", err) // unreachable: key length checked
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, p.ivBytes).CryptBlocks(out, ct)
	out, ok := pkcs7Unpad(out)
	if !ok {
		return nil, newError(op, ReasonPayloadInvalid, "invalid PKCS#7 padding")
	}
	return out, nil
}

// openGCM returns the plaintext under the first key that verifies p's tag.
func (e *Encrypter) openGCM(p payload) ([]byte, error) {
	const op = "decrypt payload"
	ct, _ := phpBase64Decode(p.value, false)
	sealed := make([]byte, 0, len(ct)+len(p.tag))
	sealed = append(append(sealed, ct...), p.tag...)
	for _, k := range e.keys {
		aead, err := newGCM(k)
		if err != nil {
			return nil, newError(op, ReasonPayloadInvalid, "create AES-GCM: %w", err) // unreachable: key length checked
		}
		if out, err := aead.Open(nil, p.ivBytes, sealed, nil); err == nil {
			if out == nil {
				out = []byte{}
			}
			return out, nil
		}
	}
	return nil, newError(op, ReasonMACInvalid, "no configured key verifies the GCM tag")
}

// Encrypt encrypts plaintext with the current key and a fresh random IV
// and returns a payload that Laravel's decrypt() (serialize true) or
// decryptString() (serialize false) returns plaintext from. With serialize
// it PHP-serializes plaintext as a string first, like encrypt(); without,
// it encrypts the bytes as they are, like encryptString().
//
// The JSON is written the way Laravel 13 writes it: members in the order
// iv, value, mac, tag, slashes not escaped (JSON_UNESCAPED_SLASHES), mac
// empty for GCM and tag empty for CBC.
//
// Errors are *Error: ReasonNoKey for the zero Encrypter. Reading random
// bytes does not fail on supported platforms.
func (e *Encrypter) Encrypt(plaintext []byte, serialize bool) (string, error) {
	const op = "encrypt value"
	if e == nil || len(e.keys) == 0 {
		return "", newError(op, ReasonNoKey, "no key configured")
	}
	data := plaintext
	if serialize {
		data = phpSerializeString(plaintext)
	}
	key := e.keys[0]
	iv := make([]byte, e.spec.ivSize)
	if _, err := rand.Read(iv); err != nil {
		return "", fmt.Errorf("%s: read random IV: %w", op, err)
	}
	b64 := base64.StdEncoding.EncodeToString
	var value, mac, tag string
	if e.spec.aead {
		aead, err := newGCM(key)
		if err != nil {
			return "", fmt.Errorf("%s: create AES-GCM: %w", op, err)
		}
		sealed := aead.Seal(nil, iv, data, nil)
		value = b64(sealed[:len(sealed)-gcmTagSize])
		tag = b64(sealed[len(sealed)-gcmTagSize:])
	} else {
		block, err := aes.NewCipher(key)
		if err != nil {
			return "", fmt.Errorf("%s: create AES cipher: %w", op, err)
		}
		ct := pkcs7Pad(data)
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
		value = b64(ct)
		mac = cbcMAC(key, b64(iv), value)
	}
	// All four strings are base64 or hex: nothing in them needs escaping.
	envelope := `{"iv":"` + b64(iv) + `","value":"` + value + `","mac":"` + mac + `","tag":"` + tag + `"}`
	return b64([]byte(envelope)), nil
}

// cbcMAC is Laravel's hash(): hash_hmac('sha256', $iv.$value, $key), in
// lower-case hex.
func cbcMAC(key []byte, iv, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(iv))
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// pkcs7Pad returns a copy of b padded to a whole number of AES blocks.
func pkcs7Pad(b []byte) []byte {
	n := aes.BlockSize - len(b)%aes.BlockSize
	out := make([]byte, len(b), len(b)+n)
	copy(out, b)
	for range n {
		out = append(out, byte(n))
	}
	return out
}

// pkcs7Unpad strips PKCS#7 padding, requiring 1 to 16 bytes all equal to
// the padding length, as OpenSSL does.
func pkcs7Unpad(b []byte) ([]byte, bool) {
	if len(b) == 0 || len(b)%aes.BlockSize != 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize {
		return nil, false
	}
	for _, c := range b[len(b)-n:] {
		if int(c) != n {
			return nil, false
		}
	}
	return b[:len(b)-n], true
}
