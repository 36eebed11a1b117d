package laravel

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{in: "auto", want: FormatAuto},
		{in: "php-serialized", want: FormatPHPSerialized},
		{in: "raw", want: FormatRaw},
		{in: "", wantErr: true},
		{in: "Raw", wantErr: true},
		{in: "serialized", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFormat(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.in, got.String())

			text, err := got.MarshalText()
			require.NoError(t, err)
			var back Format
			require.NoError(t, back.UnmarshalText(text))
			assert.Equal(t, got, back)
		})
	}
	assert.Equal(t, FormatAuto, Format(0), "the zero value is auto")
	assert.Equal(t, "Format(9)", Format(9).String())
	_, err := Format(9).MarshalText()
	assert.Error(t, err)
	var f Format
	assert.Error(t, f.UnmarshalText([]byte("bogus")))
}
