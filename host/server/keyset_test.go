package server_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/keysets"
)

// A data dir made by `keyset init` (its KEK generated in the data dir) and
// served without a KEK is refused with what is wrong and the flag to pass,
// and without the dev-mode cleartext warning, which would say the
// opposite of what is on disk.
func TestServeEncryptedKeysetWithoutKEK(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		kekInDataDir bool
		want         []string
	}{
		"kek file that init generated": {kekInDataDir: true,
			want: []string{"is encrypted", "no KEK is configured", "`connhost keyset init` put its KEK in", "--kek-file "}},
		"kek kept elsewhere": {kekInDataDir: false,
			want: []string{"is encrypted", "no KEK is configured", "--kek-file FILE, --kms-uri URI", "CONNHOST_TEST_UNSET_KEK"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := baseConfig(t)
			cfg.KEKEnv = "CONNHOST_TEST_UNSET_KEK"
			kek := filepath.Join(t.TempDir(), "kek")
			if tc.kekInDataDir {
				kek = filepath.Join(cfg.DataDir, server.DefaultKEKFile)
			}
			if err := keysets.WriteKEKFile(kek, keysets.GenerateKEK()); err != nil {
				t.Fatal(err)
			}
			if _, err := server.InitKeyset(context.Background(), cfg.DataDir, keysets.KEKFromFile(kek), nil); err != nil {
				t.Fatal(err)
			}
			logs, err := runOnce(t, cfg)
			if !errors.Is(err, server.ErrKEKRequired) || !errors.Is(err, keysets.ErrKEKRequired) {
				t.Fatalf("Run = %v, want ErrKEKRequired", err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if tc.kekInDataDir && !strings.Contains(msg, "--kek-file "+kek) {
				t.Errorf("error %q does not name the KEK file %s", msg, kek)
			}
			if strings.Contains(logs, "INSECURE DEV MODE") || strings.Contains(strings.ToLower(logs), "cleartext") {
				t.Errorf("start logged the cleartext warning for an encrypted keyset:\n%s", logs)
			}
		})
	}
}
