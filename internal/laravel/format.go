package laravel

import "fmt"

// Format says how Decrypt treats the decrypted bytes. Laravel's encrypt()
// PHP-serializes the value before encrypting it and decrypt() unserializes
// it; encryptString() and decryptString() do neither. The stored payload
// does not record which was used.
type Format int

const (
	// FormatAuto returns the string inside the plaintext if the whole
	// plaintext is one PHP-serialized string (s:N:"...";, N matching the
	// byte length exactly) and the plaintext unchanged otherwise. It is
	// the zero value. It is ambiguous for a value stored with
	// encryptString() whose text itself looks serialized: such a value
	// comes back unserialized.
	FormatAuto Format = iota
	// FormatPHPSerialized requires the plaintext to be one PHP-serialized
	// string and returns the string, like decrypt(); anything else,
	// including other serialized PHP types, fails with
	// ReasonPayloadInvalid. No other PHP type is ever unserialized.
	FormatPHPSerialized
	// FormatRaw returns the plaintext unchanged, like decryptString().
	FormatRaw
)

// String returns the format's configuration name: "auto",
// "php-serialized" or "raw".
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatPHPSerialized:
		return "php-serialized"
	case FormatRaw:
		return "raw"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses a configuration name as returned by String. Names
// are case-sensitive; any other input, including "", is an error.
func ParseFormat(s string) (Format, error) {
	for _, f := range []Format{FormatAuto, FormatPHPSerialized, FormatRaw} {
		if s == f.String() {
			return f, nil
		}
	}
	return 0, fmt.Errorf("parse format: unknown format %q (want auto, php-serialized or raw)", s)
}

// MarshalText implements encoding.TextMarshaler with the String name.
func (f Format) MarshalText() ([]byte, error) {
	if !f.valid() {
		return nil, fmt.Errorf("marshal format: unknown format %d", int(f))
	}
	return []byte(f.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseFormat.
func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

func (f Format) valid() bool {
	return f == FormatAuto || f == FormatPHPSerialized || f == FormatRaw
}

// apply turns decrypted bytes into the value the format asks for.
func (f Format) apply(plaintext []byte) ([]byte, bool) {
	switch f {
	case FormatRaw:
		return plaintext, true
	case FormatPHPSerialized:
		return phpUnserializeString(plaintext)
	default:
		if s, ok := phpUnserializeString(plaintext); ok {
			return s, true
		}
		return plaintext, true
	}
}
