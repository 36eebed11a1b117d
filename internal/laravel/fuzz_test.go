package laravel

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzDecrypt feeds arbitrary input to every cipher and format and checks
// that Decrypt never panics and either returns a plaintext or an *Error
// with reason mac_invalid or payload_invalid.
//
// With signed set, the input is instead used as the "value" of a CBC
// envelope whose MAC is computed with the current key, so that the code
// behind the MAC check (lenient base64, block checks, padding,
// unserializing) is fuzzed too.
func FuzzDecrypt(f *testing.F) {
	vectors := loadVectors(f)
	for _, v := range vectors {
		f.Add(v.Payload, false)
	}
	f.Add("", false)
	f.Add(`{"iv":"","value":"","mac":""}`, false)
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==", true)
	f.Add("", true)

	// One Encrypter per cipher holding every key the vectors use for it.
	keys := map[string][][]byte{}
	for _, v := range vectors {
		cur, prev, err := KeysFromEnv(v.AppKey, strings.Join(v.PreviousKeys, ","))
		require.NoError(f, err)
		for _, k := range append([][]byte{cur}, prev...) {
			if spec, ok := lookupCipher(v.Cipher); ok && len(k) == spec.keySize {
				keys[v.Cipher] = append(keys[v.Cipher], k)
			}
		}
	}
	var encs []*Encrypter
	for _, c := range []string{"aes-128-cbc", "aes-256-cbc", "aes-128-gcm", "aes-256-gcm"} {
		require.NotEmpty(f, keys[c], c)
		e, err := NewEncrypter(c, keys[c][0], keys[c][1:]...)
		require.NoError(f, err)
		encs = append(encs, e)
	}
	signer := encs[1] // aes-256-cbc
	signIV := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 16))

	f.Fuzz(func(t *testing.T, input string, signed bool) {
		payload := input
		if signed {
			env, err := json.Marshal(map[string]string{
				"iv": signIV, "value": input, "mac": cbcMAC(signer.keys[0], signIV, input),
			})
			require.NoError(t, err)
			payload = base64.StdEncoding.EncodeToString(env)
		}
		_ = AppearsEncrypted(payload)
		for _, e := range encs {
			raw, rawErr := e.Decrypt(payload, FormatRaw)
			for _, format := range []Format{FormatAuto, FormatPHPSerialized, FormatRaw} {
				got, err := e.Decrypt(payload, format)
				if err != nil {
					assert.Nil(t, got)
					assert.Contains(t, []Reason{ReasonMACInvalid, ReasonPayloadInvalid}, ReasonOf(err), "%s %s: %v", e.Cipher(), format, err)
					continue
				}
				require.NoError(t, rawErr, "a format succeeded where raw failed")
				assert.NotNil(t, got)
				switch format {
				case FormatRaw:
					assert.Equal(t, raw, got)
				case FormatPHPSerialized:
					assert.Equal(t, raw, phpSerializeString(got))
				}
			}
			if rawErr == nil {
				// What decrypts re-encrypts and decrypts to the same bytes.
				again, err := e.Encrypt(raw, false)
				require.NoError(t, err)
				back, err := e.Decrypt(again, FormatRaw)
				require.NoError(t, err)
				assert.Equal(t, raw, back)
			}
		}
	})
}
