package keysets_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/connhost/connhost/keysets"
)

// An encrypted keyset met by dev mode is refused without the cleartext
// warning (which would say the opposite of what is on disk), and every
// keyset log line is "message: fields", never "message.: fields".
func TestDevModeOnEncryptedFileDoesNotWarn(t *testing.T) {
	t.Parallel()
	enc := newConfig(t, newKEK(t, keysets.KEKKindFile))
	if _, err := keysets.Create(context.Background(), enc); err != nil {
		t.Fatal(err)
	}
	log, buf := newLogger(t)
	dev := keysets.Config{Path: enc.Path, KEK: keysets.Cleartext(), Logger: log}
	if _, err := keysets.Load(context.Background(), dev); !errors.Is(err, keysets.ErrKEKRequired) {
		t.Fatalf("Load = %v, want ErrKEKRequired", err)
	}
	if strings.Contains(buf.String(), "INSECURE DEV MODE") {
		t.Errorf("cleartext warning for an encrypted file:\n%s", buf)
	}
}

var punctuatedMessage = regexp.MustCompile(`[.;:!,]: [a-z_]+=`)

func TestLogLinesEndWithoutPunctuation(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{keysets.KEKKindCleartext, keysets.KEKKindFile} {
		log, buf := newLogger(t)
		cfg := newConfig(t, newKEK(t, kind))
		cfg.Logger = log
		ctx := context.Background()
		ks, err := keysets.Create(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keysets.Load(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := keysets.Rotate(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := keysets.Disable(ctx, cfg, ks.PrimaryKeyID()); err != nil {
			t.Fatal(err)
		}
		if _, err := keysets.Enable(ctx, cfg, ks.PrimaryKeyID()); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if kind == keysets.KEKKindCleartext && !strings.Contains(out, "INSECURE DEV MODE") {
			t.Fatalf("no dev-mode warning:\n%s", out)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if punctuatedMessage.MatchString(line) {
				t.Errorf("%s: message ends in punctuation before its fields: %s", kind, line)
			}
		}
	}
}
