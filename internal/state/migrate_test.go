package state

import (
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmbeddedMigrations(t *testing.T) {
	ms, err := loadMigrations(migrationFS)
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	assert.Equal(t, "0001_init.sql", ms[0].name)
}

func TestLoadMigrations(t *testing.T) {
	file := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }
	tests := []struct {
		name     string
		fsys     fstest.MapFS
		versions []int
		err      string
	}{
		{"in order", fstest.MapFS{
			"migrations/0002_more.sql": file("SELECT 2"),
			"migrations/0001_init.sql": file("SELECT 1"),
		}, []int{1, 2}, ""},
		{"gap", fstest.MapFS{
			"migrations/0001_init.sql": file("SELECT 1"),
			"migrations/0003_more.sql": file("SELECT 3"),
		}, nil, "0003_more.sql: want version 2"},
		{"repeat", fstest.MapFS{
			"migrations/0001_init.sql":  file("SELECT 1"),
			"migrations/0001_again.sql": file("SELECT 1"),
		}, nil, "want version 2"},
		{"bad name", fstest.MapFS{
			"migrations/1_init.sql": file("SELECT 1"),
		}, nil, "1_init.sql: name is not NNNN_name.sql"},
		{"empty file", fstest.MapFS{
			"migrations/0001_init.sql": file(" \n"),
		}, nil, "0001_init.sql is empty"},
		{"none", fstest.MapFS{"migrations": &fstest.MapFile{Mode: fs.ModeDir | 0o755}}, nil, "none embedded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := loadMigrations(tt.fsys)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			var vs []int
			for _, m := range ms {
				vs = append(vs, m.version)
			}
			assert.Equal(t, tt.versions, vs)
		})
	}
}
