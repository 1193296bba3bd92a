package keysets_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/connhost/connhost/keysets"
)

func TestCheckKEK(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "kek")
	if err := keysets.WriteKEKFile(good, keysets.GenerateKEK()); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "kek-open")
	if err := os.WriteFile(open, []byte(keysets.GenerateKEK()), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		src    keysets.Source
		usable bool
	}{
		"file":                   {keysets.KEKFromFile(good), true},
		"cleartext":              {keysets.Cleartext(), true},
		"missing file":           {keysets.KEKFromFile(filepath.Join(dir, "none")), false},
		"file others can read":   {keysets.KEKFromFile(open), false},
		"unset env":              {keysets.KEKFromEnv("CONNHOST_TEST_KEK_UNSET"), false},
		"KMS URI with no client": {keysets.KEKFromURI("bogus://key"), false},
		"KMS URI with no scheme": {keysets.KEKFromURI("bogus"), false},
		"no source":              {nil, false},
	}
	// The group returns once its parallel cases are done.
	t.Run("sources", func(t *testing.T) {
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				err := keysets.CheckKEK(context.Background(), tc.src)
				if (err == nil) != tc.usable {
					t.Errorf("CheckKEK = %v, want usable %v", err, tc.usable)
				}
			})
		}
	})
	// Checking writes nothing.
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 2 {
		t.Errorf("dir holds %d entries (%v), want the 2 written by the test", len(ents), err)
	}
}
