package laravel

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseKey(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []byte
		err  Reason
	}{
		{name: "base64 32 bytes", in: "base64:s/hXd0Rz2E9QH+D+xPu4zm+eke8uWvK9dEU2dqR8vJE=", want: []byte{
			0xb3, 0xf8, 0x57, 0x77, 0x44, 0x73, 0xd8, 0x4f, 0x50, 0x1f, 0xe0, 0xfe, 0xc4, 0xfb, 0xb8, 0xce,
			0x6f, 0x9e, 0x91, 0xef, 0x2e, 0x5a, 0xf2, 0xbd, 0x74, 0x45, 0x36, 0x76, 0xa4, 0x7c, 0xbc, 0x91}},
		{name: "base64 16 bytes", in: "base64:AAECAwQFBgcICQoLDA0ODw==", want: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		{name: "base64 unpadded", in: "base64:AAECAwQFBgcICQoLDA0ODw", want: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		// PHP's non-strict base64_decode skips bytes outside the alphabet.
		{name: "base64 with junk", in: "base64:AAEC AwQF.BgcI*CQoLDA0ODw==", want: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		{name: "raw key", in: "0123456789abcdef", want: []byte("0123456789abcdef")},
		{name: "raw key kept as is", in: " 0123456789abcdef ", want: []byte(" 0123456789abcdef ")},
		{name: "prefix is case-sensitive", in: "BASE64:AAAA", want: []byte("BASE64:AAAA")},
		{name: "empty", in: "", err: ReasonNoKey},
		{name: "base64 of nothing", in: "base64:", err: ReasonKeyInvalid},
		{name: "base64 of junk only", in: "base64:!!!", err: ReasonKeyInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKey(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Equal(t, tc.err, ReasonOf(err))
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestKeysFromEnv(t *testing.T) {
	const (
		k1 = "base64:AAECAwQFBgcICQoLDA0ODw=="
		k2 = "base64:EBESExQVFhcYGRobHB0eHw=="
		k3 = "fedcba9876543210"
	)
	b1 := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	b2 := []byte{16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}
	b3 := []byte(k3)
	tests := []struct {
		name     string
		app      string
		previous string
		current  []byte
		prev     [][]byte
		err      Reason
		msg      string
	}{
		{name: "no previous", app: k1, current: b1},
		{name: "trimmed app key", app: "  " + k1 + "\n", current: b1},
		{name: "previous in order", app: k1, previous: k2 + "," + k3, current: b1, prev: [][]byte{b2, b3}},
		{name: "spaces and empties", app: k1, previous: " , " + k3 + " ,, " + k2 + " ,", current: b1, prev: [][]byte{b3, b2}},
		{name: "only commas", app: k1, previous: ",, ,", current: b1},
		{name: "empty app key", app: "", previous: k2, err: ReasonNoKey, msg: "load keys: no_key: APP_KEY: key is empty"},
		{name: "blank app key", app: " \t", err: ReasonNoKey, msg: "APP_KEY"},
		{name: "bad previous", app: k1, previous: k2 + ", ,base64:", err: ReasonKeyInvalid, msg: "load keys: key_invalid: APP_PREVIOUS_KEYS entry 2: base64 key decodes to nothing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			current, prev, err := KeysFromEnv(tc.app, tc.previous)
			if tc.err != "" {
				require.Error(t, err)
				assert.Equal(t, tc.err, ReasonOf(err))
				assert.Contains(t, err.Error(), tc.msg)
				assert.Nil(t, current)
				assert.Nil(t, prev)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.current, current)
			assert.Equal(t, tc.prev, prev)
		})
	}
}

// TestKeysFromEnvDecryptsRotated wires KeysFromEnv into NewEncrypter the way
// the rotation vectors need.
func TestKeysFromEnvDecryptsRotated(t *testing.T) {
	old, err := NewEncrypter("aes-128-cbc", []byte("fedcba9876543210"))
	require.NoError(t, err)
	payload, err := old.Encrypt([]byte("rotated"), true)
	require.NoError(t, err)

	current, previous, err := KeysFromEnv("base64:AAECAwQFBgcICQoLDA0ODw==", "base64:EBESExQVFhcYGRobHB0eHw==, fedcba9876543210")
	require.NoError(t, err)
	e, err := NewEncrypter("aes-128-cbc", current, previous...)
	require.NoError(t, err)
	got, err := e.Decrypt(payload, FormatAuto)
	require.NoError(t, err)
	assert.Equal(t, "rotated", string(got))
	assert.True(t, bytes.Equal(current, e.keys[0]))
}
