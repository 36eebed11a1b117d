package laravel

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// vector is one entry of testdata/laravel-encrypter-vectors.json: a value
// Laravel 13 itself produced, and what its decrypt()/decryptString() gives.
type vector struct {
	Cipher       string   `json:"cipher"`
	AppKey       string   `json:"app_key"`
	PreviousKeys []string `json:"previous_keys"`
	Payload      string   `json:"payload"`
	Serialized   bool     `json:"serialized"`
	Expect       string   `json:"expect"`
	Plaintext    *string  `json:"plaintext"`
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "laravel-encrypter-vectors.json"))
	require.NoError(tb, err)
	var doc struct {
		About   string   `json:"about"`
		Vectors []vector `json:"vectors"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	require.NoError(tb, dec.Decode(&doc))
	require.NotEmpty(tb, doc.Vectors)
	return doc.Vectors
}

// encrypterFor builds the Encrypter a Laravel app configured like v has.
func encrypterFor(tb testing.TB, v vector) *Encrypter {
	tb.Helper()
	current, previous, err := KeysFromEnv(v.AppKey, strings.Join(v.PreviousKeys, ","))
	require.NoError(tb, err)
	e, err := NewEncrypter(v.Cipher, current, previous...)
	require.NoError(tb, err)
	return e
}

func TestVectors(t *testing.T) {
	vectors := loadVectors(t)
	for i, v := range vectors {
		name := v.Cipher + "/" + v.Expect
		if v.Plaintext != nil {
			name += "/" + truncate(*v.Plaintext, 16)
		}
		t.Run(name, func(t *testing.T) {
			e := encrypterFor(t, v)
			format := FormatRaw // decryptString()
			if v.Serialized {
				format = FormatPHPSerialized // decrypt()
			}
			got, err := e.Decrypt(v.Payload, format)

			if v.Expect == "error" {
				require.Error(t, err, "vector %d", i)
				assert.Nil(t, got)
				// Laravel's error vectors are either not payloads at all
				// or payloads no configured key authenticates.
				want := ReasonMACInvalid
				if !AppearsEncrypted(v.Payload) {
					want = ReasonPayloadInvalid
				}
				assert.Equal(t, want, ReasonOf(err), "vector %d: %v", i, err)
				for _, f := range []Format{FormatAuto, FormatRaw, FormatPHPSerialized} {
					_, err := e.Decrypt(v.Payload, f)
					assert.Equal(t, want, ReasonOf(err), "vector %d, format %s", i, f)
				}
				return
			}

			require.Equal(t, "ok", v.Expect)
			require.NotNil(t, v.Plaintext)
			require.NoError(t, err, "vector %d", i)
			assert.Equal(t, *v.Plaintext, string(got))
			assert.True(t, AppearsEncrypted(v.Payload))

			raw, err := e.Decrypt(v.Payload, FormatRaw)
			require.NoError(t, err)
			if v.Serialized {
				assert.Equal(t, string(phpSerializeString([]byte(*v.Plaintext))), string(raw))
			} else {
				assert.Equal(t, *v.Plaintext, string(raw))
			}

			// Laravel writes slashes unescaped; an escaped \/ must decode too.
			decoded, err := base64.StdEncoding.DecodeString(v.Payload)
			require.NoError(t, err)
			escaped := base64.StdEncoding.EncodeToString(bytes.ReplaceAll(decoded, []byte("/"), []byte(`\/`)))
			got, err = e.Decrypt(escaped, format)
			require.NoError(t, err)
			assert.Equal(t, *v.Plaintext, string(got))
		})
	}
}

// TestVectorsAuto pins down FormatAuto on every vector: it unserializes what
// encrypt() wrote, and also what encryptString() wrote when that text is
// itself a serialized PHP string (the one ambiguity of auto).
func TestVectorsAuto(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Expect != "ok" {
			continue
		}
		e := encrypterFor(t, v)
		got, err := e.Decrypt(v.Payload, FormatAuto)
		require.NoError(t, err)
		want := *v.Plaintext
		if !v.Serialized && want == `s:3:"abc";` {
			want = "abc"
		}
		assert.Equal(t, want, string(got), "%s serialized=%v", v.Cipher, v.Serialized)
	}
}

// TestVectorsRejectedByOtherCiphers checks that a payload is only accepted
// by the cipher and keys it was written with.
func TestVectorsRejectedByOtherCiphers(t *testing.T) {
	keys := map[int][]byte{16: bytes.Repeat([]byte{1}, 16), 32: bytes.Repeat([]byte{2}, 32)}
	for _, v := range loadVectors(t) {
		if v.Expect != "ok" {
			continue
		}
		for _, c := range []string{"aes-128-cbc", "aes-256-cbc", "aes-128-gcm", "aes-256-gcm"} {
			spec, ok := lookupCipher(c)
			require.True(t, ok)
			e, err := NewEncrypter(c, keys[spec.keySize])
			require.NoError(t, err)
			_, err = e.Decrypt(v.Payload, FormatRaw)
			want := ReasonMACInvalid
			if strings.HasSuffix(c, "cbc") != strings.HasSuffix(v.Cipher, "cbc") {
				want = ReasonPayloadInvalid // IV length (and tag) do not fit
			}
			assert.Equal(t, want, ReasonOf(err), "%s payload under %s", v.Cipher, c)
		}
	}
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	plaintexts := map[string][]byte{
		"empty":         {},
		"ascii":         []byte("Devkota@1?"),
		"one block":     []byte("0123456789abcdef"),
		"unicode":       []byte("ünïcødé-pässwörd-密码"),
		"binary":        {0, 1, 2, 0xff, 0xfe, '"', ';', '\n'},
		"looks serial":  []byte(`s:3:"abc";`),
		"long":          bytes.Repeat([]byte("x"), 1000),
		"quotes, slash": []byte(`p@ss"w0rd'/\; DROP TABLE tenants;--`),
	}
	for _, c := range []string{"aes-128-cbc", "aes-256-cbc", "AES-128-GCM", "Aes-256-Gcm"} {
		spec, ok := lookupCipher(c)
		require.True(t, ok)
		key := bytes.Repeat([]byte{7}, spec.keySize)
		e, err := NewEncrypter(c, key)
		require.NoError(t, err)
		for name, pt := range plaintexts {
			for _, serialize := range []bool{true, false} {
				t.Run(c+"/"+name, func(t *testing.T) {
					payload, err := e.Encrypt(pt, serialize)
					require.NoError(t, err)
					assert.True(t, AppearsEncrypted(payload))

					format := FormatRaw
					if serialize {
						format = FormatPHPSerialized
					}
					got, err := e.Decrypt(payload, format)
					require.NoError(t, err)
					assert.Equal(t, pt, got)

					raw, err := e.Decrypt(payload, FormatRaw)
					require.NoError(t, err)
					if serialize {
						assert.Equal(t, phpSerializeString(pt), raw)
						auto, err := e.Decrypt(payload, FormatAuto)
						require.NoError(t, err)
						assert.Equal(t, pt, auto)
					} else {
						assert.Equal(t, pt, raw)
					}

					// A second encryption uses a fresh IV.
					again, err := e.Encrypt(pt, serialize)
					require.NoError(t, err)
					assert.NotEqual(t, payload, again)
				})
			}
		}
	}
}

// TestEncryptOutputShape checks the envelope is byte-for-byte in Laravel's
// layout, as in the vectors: member order, no escaped slashes, the unused
// one of mac/tag empty, lengths of IV and tag.
func TestEncryptOutputShape(t *testing.T) {
	cbc := regexp.MustCompile(`^\{"iv":"[A-Za-z0-9+/]{22}==","value":"[A-Za-z0-9+/=]+","mac":"[0-9a-f]{64}","tag":""\}$`)
	gcm := regexp.MustCompile(`^\{"iv":"[A-Za-z0-9+/]{16}","value":"[A-Za-z0-9+/=]*","mac":"","tag":"[A-Za-z0-9+/]{22}=="\}$`)
	for _, tc := range []struct {
		cipher string
		re     *regexp.Regexp
	}{{"aes-128-cbc", cbc}, {"aes-256-cbc", cbc}, {"aes-128-gcm", gcm}, {"aes-256-gcm", gcm}} {
		spec, _ := lookupCipher(tc.cipher)
		e, err := NewEncrypter(tc.cipher, bytes.Repeat([]byte{9}, spec.keySize))
		require.NoError(t, err)
		for range 20 { // enough IVs that a '/' shows up somewhere
			payload, err := e.Encrypt([]byte("secret123!"), true)
			require.NoError(t, err)
			envelope, err := base64.StdEncoding.DecodeString(payload)
			require.NoError(t, err)
			assert.Regexp(t, tc.re, string(envelope), tc.cipher)
		}
	}
	// The vectors themselves match the same patterns.
	for _, v := range loadVectors(t) {
		if v.Expect != "ok" {
			continue
		}
		envelope, err := base64.StdEncoding.DecodeString(v.Payload)
		require.NoError(t, err)
		re := cbc
		if strings.HasSuffix(v.Cipher, "gcm") {
			re = gcm
		}
		assert.Regexp(t, re, string(envelope))
	}
}

func TestDecryptWrongKey(t *testing.T) {
	for _, c := range []string{"aes-128-cbc", "aes-256-cbc", "aes-128-gcm", "aes-256-gcm"} {
		spec, _ := lookupCipher(c)
		right, err := NewEncrypter(c, bytes.Repeat([]byte{1}, spec.keySize))
		require.NoError(t, err)
		wrong, err := NewEncrypter(c, bytes.Repeat([]byte{2}, spec.keySize), bytes.Repeat([]byte{3}, spec.keySize))
		require.NoError(t, err)
		payload, err := right.Encrypt([]byte("secret123!"), true)
		require.NoError(t, err)

		_, err = wrong.Decrypt(payload, FormatAuto)
		require.Error(t, err)
		assert.Equal(t, ReasonMACInvalid, ReasonOf(err), c)
		var le *Error
		require.ErrorAs(t, err, &le)
		assert.Equal(t, "decrypt payload", le.Op)

		// The right key as a previous key decrypts it.
		rotated, err := NewEncrypter(c, bytes.Repeat([]byte{2}, spec.keySize), bytes.Repeat([]byte{3}, spec.keySize), bytes.Repeat([]byte{1}, spec.keySize))
		require.NoError(t, err)
		got, err := rotated.Decrypt(payload, FormatAuto)
		require.NoError(t, err)
		assert.Equal(t, "secret123!", string(got))
	}
}

// cbcEnvelope builds a CBC payload whose MAC verifies under macKey, with an
// arbitrary already-encrypted value.
func cbcEnvelope(t *testing.T, macKey, iv []byte, value string) string {
	t.Helper()
	ivB64 := base64.StdEncoding.EncodeToString(iv)
	env, err := json.Marshal(map[string]string{"iv": ivB64, "value": value, "mac": cbcMAC(macKey, ivB64, value), "tag": ""})
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(env)
}

// cbcEncryptNoPad encrypts whole blocks without adding padding.
func cbcEncryptNoPad(t *testing.T, key, iv, blocks []byte) string {
	t.Helper()
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	out := make([]byte, len(blocks))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, blocks)
	return base64.StdEncoding.EncodeToString(out)
}

func TestDecryptValidMACBadCiphertext(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	iv := []byte("fedcba9876543210")
	block := func(last ...byte) []byte {
		b := bytes.Repeat([]byte("A"), aes.BlockSize-len(last))
		return append(b, last...)
	}
	// A full block whose last byte claims 16 bytes of padding, one of which
	// differs.
	fullBlockBadPad := bytes.Repeat([]byte{16}, 16)
	fullBlockBadPad[0] = 15
	tests := []struct {
		name  string
		value string
	}{
		{"zero padding byte", cbcEncryptNoPad(t, key, iv, block(0))},
		{"padding byte 17", cbcEncryptNoPad(t, key, iv, block(17))},
		{"padding byte 255", cbcEncryptNoPad(t, key, iv, block(255))},
		{"inconsistent padding", cbcEncryptNoPad(t, key, iv, block(3, 2, 3))},
		{"inconsistent full-block padding", cbcEncryptNoPad(t, key, iv, fullBlockBadPad)},
		{"empty value", ""},
		{"partial block", base64.StdEncoding.EncodeToString(make([]byte, 15))},
		{"not base64 at all", "!!!!"},
	}
	e, err := NewEncrypter("aes-256-cbc", key)
	require.NoError(t, err)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			payload := cbcEnvelope(t, key, iv, tc.value)
			assert.True(t, AppearsEncrypted(payload))
			got, err := e.Decrypt(payload, FormatRaw)
			require.Error(t, err)
			assert.Nil(t, got)
			assert.Equal(t, ReasonPayloadInvalid, ReasonOf(err), "%v", err)
		})
	}

	// Correct padding through the same path decrypts.
	ok := cbcEnvelope(t, key, iv, cbcEncryptNoPad(t, key, iv, block(2, 2)))
	got, err := e.Decrypt(ok, FormatRaw)
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("A", 14), string(got))
}

// TestDecryptOnlyMACKeyDecrypts: once a key's MAC verifies, only that key
// decrypts, even if a later key would "work" (never try-and-see).
func TestDecryptOnlyMACKeyDecrypts(t *testing.T) {
	current := bytes.Repeat([]byte{1}, 32)
	previous := bytes.Repeat([]byte{2}, 32)
	iv := bytes.Repeat([]byte{3}, 16)
	// Valid ciphertext under the previous key, MAC'ed with the current one.
	value := cbcEncryptNoPad(t, previous, iv, pkcs7Pad([]byte("secret")))
	payload := cbcEnvelope(t, current, iv, value)

	e, err := NewEncrypter("aes-256-cbc", current, previous)
	require.NoError(t, err)
	got, err := e.Decrypt(payload, FormatRaw)
	assert.NotEqual(t, "secret", string(got))
	assert.Equal(t, ReasonPayloadInvalid, ReasonOf(err), "%v", err)

	// Both MACs computed over the same strings: the current key wins.
	e2, err := NewEncrypter("aes-256-cbc", previous, current)
	require.NoError(t, err)
	_, err = e2.Decrypt(payload, FormatRaw)
	assert.Equal(t, ReasonPayloadInvalid, ReasonOf(err))
}

func TestDecryptPayloadShape(t *testing.T) {
	cbcKey := bytes.Repeat([]byte{4}, 32)
	gcmKey := bytes.Repeat([]byte{5}, 32)
	cbcE, err := NewEncrypter("aes-256-cbc", cbcKey)
	require.NoError(t, err)
	gcmE, err := NewEncrypter("aes-256-gcm", gcmKey)
	require.NoError(t, err)
	good, err := cbcE.Encrypt([]byte("hello"), false)
	require.NoError(t, err)
	goodGCM, err := gcmE.Encrypt([]byte("hello"), false)
	require.NoError(t, err)
	fields := func(payload string) map[string]any {
		b, err := base64.StdEncoding.DecodeString(payload)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		return m
	}
	build := func(m map[string]any) string {
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return base64.StdEncoding.EncodeToString(b)
	}
	with := func(payload, k string, v any) string {
		m := fields(payload)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return build(m)
	}
	// remac recomputes the MAC under cbcKey after an edit.
	remac := func(payload string) string {
		m := fields(payload)
		m["mac"] = cbcMAC(cbcKey, m["iv"].(string), m["value"].(string))
		return build(m)
	}
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name    string
		e       *Encrypter
		payload string
		want    Reason // "" means it decrypts to "hello"
	}{
		{"good cbc", cbcE, good, ""},
		{"good gcm", gcmE, goodGCM, ""},
		{"unpadded outer base64", cbcE, strings.TrimRight(good, "="), ""},
		{"outer base64 with line breaks", cbcE, good[:20] + "\r\n" + good[20:], ""},
		{"tag null on cbc", cbcE, remac(with(good, "tag", json.RawMessage("null"))), ""},
		{"tag absent on cbc", cbcE, with(good, "tag", nil), ""},
		{`tag "0" on cbc (PHP empty())`, cbcE, with(good, "tag", "0"), ""},
		{"extra members ignored", cbcE, with(good, "extra", []int{1}), ""},
		{"mac ignored for gcm", gcmE, with(goodGCM, "mac", "anything"), ""},
		{"empty", cbcE, "", ReasonPayloadInvalid},
		{"plain text", cbcE, "Devkota@1?", ReasonPayloadInvalid},
		{"base64 of a JSON list", cbcE, b64([]byte(`["iv","value","mac"]`)), ReasonPayloadInvalid},
		{"base64 of null", cbcE, b64([]byte(`null`)), ReasonPayloadInvalid},
		{"iv missing", cbcE, with(good, "iv", nil), ReasonPayloadInvalid},
		{"iv not a string", cbcE, with(good, "iv", 12), ReasonPayloadInvalid},
		{"value null", cbcE, with(good, "value", json.RawMessage("null")), ReasonPayloadInvalid},
		{"mac not a string", cbcE, with(good, "mac", true), ReasonPayloadInvalid},
		{"tag not a string", cbcE, with(good, "tag", 0), ReasonPayloadInvalid},
		{"iv too short", cbcE, remac(with(good, "iv", b64(make([]byte, 15)))), ReasonPayloadInvalid},
		{"iv too long", cbcE, remac(with(good, "iv", b64(make([]byte, 17)))), ReasonPayloadInvalid},
		{"iv not strict base64", cbcE, remac(with(good, "iv", "AAAAAAAAAAAAAAAAAAAA!A==")), ReasonPayloadInvalid},
		{"gcm iv of 16 bytes", gcmE, with(goodGCM, "iv", b64(make([]byte, 16))), ReasonPayloadInvalid},
		{"tag on cbc", cbcE, with(good, "tag", b64(make([]byte, 16))), ReasonPayloadInvalid},
		{"gcm tag missing", gcmE, with(goodGCM, "tag", nil), ReasonPayloadInvalid},
		{"gcm tag empty", gcmE, with(goodGCM, "tag", ""), ReasonPayloadInvalid},
		{"gcm tag 15 bytes", gcmE, with(goodGCM, "tag", b64(make([]byte, 15))), ReasonPayloadInvalid},
		{"gcm tag 17 bytes", gcmE, with(goodGCM, "tag", b64(make([]byte, 17))), ReasonPayloadInvalid},
		{"mac upper-case hex", cbcE, with(good, "mac", strings.ToUpper(fields(good)["mac"].(string))), ReasonMACInvalid},
		{"mac empty", cbcE, with(good, "mac", ""), ReasonMACInvalid},
		{"value edited", cbcE, with(good, "value", b64(make([]byte, 16))), ReasonMACInvalid},
		{"gcm value edited", gcmE, with(goodGCM, "value", b64([]byte("hellp"))), ReasonMACInvalid},
		{"gcm tag zero", gcmE, with(goodGCM, "tag", b64(make([]byte, 16))), ReasonMACInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.e.Decrypt(tc.payload, FormatRaw)
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, "hello", string(got))
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.want, ReasonOf(err), "%v", err)
		})
	}
}

func TestDecryptFormats(t *testing.T) {
	e, err := NewEncrypter("aes-128-gcm", bytes.Repeat([]byte{6}, 16))
	require.NoError(t, err)
	tests := []struct {
		plaintext  string
		auto       string
		serialized string // "" with wantErr
		wantErr    bool
	}{
		{plaintext: `s:10:"secret123!";`, auto: "secret123!", serialized: "secret123!"},
		{plaintext: `s:0:"";`, auto: "", serialized: ""},
		{plaintext: `s:6:"密码";`, auto: "密码", serialized: "密码"},
		{plaintext: `s:2:"密码";`, auto: `s:2:"密码";`, wantErr: true}, // length in characters, not bytes
		{plaintext: `s:03:"abc";`, auto: "abc", serialized: "abc"}, // PHP accepts leading zeros
		{plaintext: `s:3:"a"c";`, auto: `a"c`, serialized: `a"c`},  // no escaping inside
		{plaintext: `s:3:"abc";x`, auto: `s:3:"abc";x`, wantErr: true},
		{plaintext: `s:3:"abc"`, auto: `s:3:"abc"`, wantErr: true},
		{plaintext: `s:+3:"abc";`, auto: `s:+3:"abc";`, wantErr: true},
		{plaintext: `s:-3:"abc";`, auto: `s:-3:"abc";`, wantErr: true},
		{plaintext: `S:3:"abc";`, auto: `S:3:"abc";`, wantErr: true},
		{plaintext: `i:5;`, auto: `i:5;`, wantErr: true},
		{plaintext: `b:0;`, auto: `b:0;`, wantErr: true},
		{plaintext: `N;`, auto: `N;`, wantErr: true},
		{plaintext: `a:1:{i:0;s:1:"x";}`, auto: `a:1:{i:0;s:1:"x";}`, wantErr: true},
		{plaintext: `O:8:"stdClass":0:{}`, auto: `O:8:"stdClass":0:{}`, wantErr: true},
		{plaintext: `s:99999999999999999999999:"x";`, auto: `s:99999999999999999999999:"x";`, wantErr: true},
		{plaintext: "plain password", auto: "plain password", wantErr: true},
		{plaintext: "", auto: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.plaintext, func(t *testing.T) {
			payload, err := e.Encrypt([]byte(tc.plaintext), false)
			require.NoError(t, err)

			raw, err := e.Decrypt(payload, FormatRaw)
			require.NoError(t, err)
			assert.Equal(t, tc.plaintext, string(raw))

			auto, err := e.Decrypt(payload, FormatAuto)
			require.NoError(t, err)
			assert.Equal(t, tc.auto, string(auto))

			ser, err := e.Decrypt(payload, FormatPHPSerialized)
			if tc.wantErr {
				require.Error(t, err)
				assert.Equal(t, ReasonPayloadInvalid, ReasonOf(err))
				if len(tc.plaintext) > 2 {
					assert.NotContains(t, err.Error(), tc.plaintext)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.serialized, string(ser))
		})
	}

	payload, err := e.Encrypt([]byte("x"), false)
	require.NoError(t, err)
	_, err = e.Decrypt(payload, Format(42))
	require.Error(t, err)
	assert.Equal(t, Reason(""), ReasonOf(err))
}

func TestNewEncrypter(t *testing.T) {
	k16 := bytes.Repeat([]byte{1}, 16)
	k32 := bytes.Repeat([]byte{2}, 32)
	tests := []struct {
		name     string
		cipher   string
		key      []byte
		previous [][]byte
		want     Reason
		msg      string
	}{
		{name: "aes-128-cbc", cipher: "aes-128-cbc", key: k16},
		{name: "upper case", cipher: "AES-256-CBC", key: k32},
		{name: "gcm with previous", cipher: "aes-256-gcm", key: k32, previous: [][]byte{k32, k32}},
		{name: "unknown cipher", cipher: "aes-192-cbc", key: k32, want: ReasonKeyInvalid, msg: "unsupported cipher"},
		{name: "empty cipher", cipher: "", key: k32, want: ReasonKeyInvalid, msg: "unsupported cipher"},
		{name: "unicode fold is not ASCII case", cipher: "aeſ-256-cbc", key: k32, want: ReasonKeyInvalid, msg: "unsupported cipher"},
		{name: "no key", cipher: "aes-256-cbc", want: ReasonNoKey, msg: "current key is empty"},
		{name: "short key", cipher: "aes-256-cbc", key: k16, want: ReasonKeyInvalid, msg: "current key is 16 bytes, aes-256-cbc needs 32"},
		{name: "long key", cipher: "aes-128-gcm", key: k32, want: ReasonKeyInvalid, msg: "current key is 32 bytes, aes-128-gcm needs 16"},
		{name: "bad previous key", cipher: "aes-128-cbc", key: k16, previous: [][]byte{k16, k32}, want: ReasonKeyInvalid, msg: "previous key 2 is 32 bytes, aes-128-cbc needs 16"},
		{name: "empty previous key", cipher: "aes-128-cbc", key: k16, previous: [][]byte{nil}, want: ReasonKeyInvalid, msg: "previous key 1 is 0 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewEncrypter(tc.cipher, tc.key, tc.previous...)
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, asciiLower(tc.cipher), e.Cipher())
				return
			}
			require.Error(t, err)
			assert.Nil(t, e)
			assert.Equal(t, tc.want, ReasonOf(err))
			assert.Contains(t, err.Error(), tc.msg)
			assert.True(t, strings.HasPrefix(err.Error(), "create encrypter: "+string(tc.want)+": "), err.Error())
		})
	}
}

func TestNewEncrypterCopiesKeys(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 16)
	e, err := NewEncrypter("aes-128-cbc", key)
	require.NoError(t, err)
	payload, err := e.Encrypt([]byte("x"), false)
	require.NoError(t, err)
	key[0] = 99
	got, err := e.Decrypt(payload, FormatRaw)
	require.NoError(t, err)
	assert.Equal(t, "x", string(got))
}

func TestZeroEncrypter(t *testing.T) {
	for _, e := range []*Encrypter{nil, {}} {
		_, err := e.Decrypt("x", FormatAuto)
		assert.Equal(t, ReasonNoKey, ReasonOf(err))
		_, err = e.Encrypt([]byte("x"), true)
		assert.Equal(t, ReasonNoKey, ReasonOf(err))
		assert.Equal(t, "", e.Cipher())
	}
}

// TestErrorsDoNotLeak: no error message contains a key (raw, base64 or hex),
// the plaintext, the payload or its parts.
func TestErrorsDoNotLeak(t *testing.T) {
	const secret = "Sup3r-S3cret-Passw0rd"
	key := []byte("k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y!")
	other := []byte("0th3r-0th3r-0th3r-0th3r-0th3r-00")
	appKey := "base64:" + base64.StdEncoding.EncodeToString(key)
	e, err := NewEncrypter("aes-256-cbc", key)
	require.NoError(t, err)
	wrong, err := NewEncrypter("aes-256-cbc", other)
	require.NoError(t, err)
	gcmE, err := NewEncrypter("aes-256-gcm", key)
	require.NoError(t, err)
	payload, err := e.Encrypt([]byte(secret), false)
	require.NoError(t, err)
	gcmPayload, err := gcmE.Encrypt([]byte(secret), false)
	require.NoError(t, err)
	iv := bytes.Repeat([]byte{8}, 16)
	badPad := cbcEnvelope(t, key, iv, cbcEncryptNoPad(t, key, iv, []byte(secret[:16])))

	var errs []error
	collect := func(_ any, err error) { errs = append(errs, err) }
	collect(wrong.Decrypt(payload, FormatAuto))
	collect(e.Decrypt(payload, FormatPHPSerialized))
	collect(e.Decrypt(badPad, FormatRaw))
	collect(e.Decrypt(secret, FormatRaw))
	collect(e.Decrypt(base64.StdEncoding.EncodeToString([]byte(secret)), FormatRaw))
	collect(e.Decrypt(gcmPayload, FormatRaw))
	collect(gcmE.Decrypt(payload, FormatRaw))
	collect(NewEncrypter("aes-128-cbc", key))
	collect(NewEncrypter("aes-256-cbc", key, key[:31]))
	_, _, err = KeysFromEnv(" ", appKey)
	errs = append(errs, err)
	short, _, err := KeysFromEnv(appKey[:20], "")
	require.NoError(t, err)
	collect(NewEncrypter("aes-256-cbc", short))
	_, _, err = KeysFromEnv(appKey, appKey+",base64:")
	errs = append(errs, err)

	decoded, err := base64.StdEncoding.DecodeString(payload)
	require.NoError(t, err)
	var parts map[string]string
	require.NoError(t, json.Unmarshal(decoded, &parts))
	forbidden := []string{
		secret, string(key), appKey, base64.StdEncoding.EncodeToString(key), hex.EncodeToString(key),
		string(other), payload, gcmPayload, badPad, string(decoded), parts["iv"], parts["value"], parts["mac"],
		base64.StdEncoding.EncodeToString([]byte(secret)),
	}
	for i, err := range errs {
		require.Error(t, err, "case %d", i)
		require.NotEmpty(t, ReasonOf(err), "case %d", i)
		for _, f := range forbidden {
			assert.NotContains(t, err.Error(), f, "case %d", i)
		}
		assert.NotContains(t, err.Error(), "k3y", "case %d", i)
		assert.NotContains(t, err.Error(), "S3cret", "case %d", i)
	}
}

func TestReasonOf(t *testing.T) {
	assert.Equal(t, Reason(""), ReasonOf(nil))
	assert.Equal(t, Reason(""), ReasonOf(assert.AnError))
	err := &Error{Op: "decrypt payload", Reason: ReasonMACInvalid}
	assert.Equal(t, ReasonMACInvalid, ReasonOf(err))
	wrapped := fmt.Errorf("probe tenant acme: %w", err)
	assert.Equal(t, ReasonMACInvalid, ReasonOf(wrapped))
	var le *Error
	require.ErrorAs(t, wrapped, &le)
	assert.Same(t, err, le)
	assert.Equal(t, "decrypt payload: mac_invalid", err.Error())
	assert.ElementsMatch(t, []Reason{"mac_invalid", "payload_invalid", "no_key", "key_invalid"}, Reasons())
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}
