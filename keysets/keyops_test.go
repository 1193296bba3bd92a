package keysets_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connhost/connhost/keysets"
)

// DisableKey runs its check under the file lock before writing: a check
// that refuses leaves the file byte for byte, a disabled key is not
// checked again, and changed says whether anything was written.
func TestDisableKeyCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := newConfig(t, newKEK(t, keysets.KEKKindFile))
	first, err := keysets.Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keysets.Rotate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	old := first.PrimaryKeyID()
	before, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	inUse := errors.New("still needed")
	var checked []uint32
	check := func(err error) func(context.Context, keysets.KeyInfo) error {
		return func(_ context.Context, k keysets.KeyInfo) error {
			checked = append(checked, k.ID)
			return err
		}
	}
	if _, changed, err := keysets.DisableKey(ctx, cfg, old, check(inUse)); !errors.Is(err, inUse) || changed {
		t.Fatalf("refusing check: changed %v, err %v", changed, err)
	}
	if after, _ := os.ReadFile(cfg.Path); !bytes.Equal(before, after) {
		t.Error("a refused disable rewrote the keyset file")
	}
	info, changed, err := keysets.DisableKey(ctx, cfg, old, check(nil))
	if err != nil || !changed || statusOf(info, old) != keysets.StatusDisabled {
		t.Fatalf("disable: changed %v, err %v, info %+v", changed, err, info)
	}
	if _, changed, err = keysets.DisableKey(ctx, cfg, old, check(inUse)); err != nil || changed {
		t.Errorf("disable a disabled key: changed %v, err %v", changed, err)
	}
	if len(checked) != 2 {
		t.Errorf("checked %v, want the two disables of an enabled key", checked)
	}
	if _, _, err := keysets.DisableKey(ctx, cfg, info.PrimaryKeyID, check(nil)); !errors.Is(err, keysets.ErrPrimaryKey) {
		t.Errorf("disable the primary: %v", err)
	}
	if len(checked) != 2 {
		t.Error("the primary key was checked before being refused")
	}
	if _, changed, err := keysets.EnableKey(ctx, cfg, old); err != nil || !changed {
		t.Errorf("enable: changed %v, err %v", changed, err)
	}
	if _, changed, err := keysets.EnableKey(ctx, cfg, old); err != nil || changed {
		t.Errorf("enable an enabled key: changed %v, err %v", changed, err)
	}
}

// Encrypt turns a dev keyset into an encrypted one in place: same keys and
// statuses, every earlier ciphertext still decrypts under the KEK, the
// file stays 0600, and dev mode no longer reads it.
func TestEncryptCleartextKeyset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dev := newConfig(t, newKEK(t, keysets.KEKKindCleartext))
	first, err := keysets.Create(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	ct := mustEncrypt(t, first, "secret", "conn-1")
	if _, err := keysets.Rotate(ctx, dev); err != nil {
		t.Fatal(err)
	}
	if _, err := keysets.Disable(ctx, dev, first.PrimaryKeyID()); err != nil {
		t.Fatal(err)
	}
	devInfo, err := keysets.Load(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}

	log, buf := newLogger(t)
	enc := keysets.Config{Path: dev.Path, KEK: newKEK(t, keysets.KEKKindFile).src, Logger: log}
	if _, err := keysets.Encrypt(ctx, keysets.Config{Path: dev.Path, KEK: keysets.Cleartext(), Logger: log}); !errors.Is(err, keysets.ErrInvalidConfig) {
		t.Errorf("Encrypt under Cleartext() = %v, want ErrInvalidConfig", err)
	}
	info, err := keysets.Encrypt(ctx, enc)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if !info.Encrypted || info.KEK != keysets.KEKKindFile {
		t.Errorf("info %+v", info)
	}
	want := devInfo.Info()
	for i := range want.Keys {
		if want.Keys[i] != info.Keys[i] {
			t.Errorf("key %d: %+v, was %+v", i, info.Keys[i], want.Keys[i])
		}
	}
	if fi, err := os.Stat(dev.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("keyset file mode: %v %v", fi.Mode().Perm(), err)
	}
	if strings.Contains(buf.String(), "INSECURE DEV MODE") {
		t.Errorf("Encrypt warned about cleartext:\n%s", buf)
	}
	loaded, err := keysets.Load(ctx, enc)
	if err != nil {
		t.Fatalf("Load under the KEK: %v", err)
	}
	if _, err := keysets.Enable(ctx, enc, first.PrimaryKeyID()); err != nil {
		t.Fatal(err)
	}
	if loaded, err = keysets.Load(ctx, enc); err != nil {
		t.Fatal(err)
	}
	mustDecrypt(t, loaded, ct, "conn-1", "secret")
	if _, err := keysets.Load(ctx, dev); !errors.Is(err, keysets.ErrKEKRequired) {
		t.Errorf("dev-mode Load of the encrypted file = %v, want ErrKEKRequired", err)
	}
	if _, err := keysets.Encrypt(ctx, enc); !errors.Is(err, keysets.ErrAlreadyEncrypted) {
		t.Errorf("second Encrypt = %v, want ErrAlreadyEncrypted", err)
	}
	missing := enc
	missing.Path = dev.Path + ".missing"
	if _, err := keysets.Encrypt(ctx, missing); !errors.Is(err, keysets.ErrNotFound) {
		t.Errorf("Encrypt of no file = %v, want ErrNotFound", err)
	}
	if names := dirNames(t, filepath.Dir(dev.Path)); len(names) != 2 {
		t.Errorf("files left beside the keyset: %v", names)
	}
}

// A KEK meeting a cleartext keyset names the command that encrypts it,
// not a Go function.
func TestCleartextRefusalNamesEncryptCommand(t *testing.T) {
	t.Parallel()
	dev := newConfig(t, newKEK(t, keysets.KEKKindCleartext))
	if _, err := keysets.Create(context.Background(), dev); err != nil {
		t.Fatal(err)
	}
	enc := keysets.Config{Path: dev.Path, KEK: newKEK(t, keysets.KEKKindFile).src}
	_, err := keysets.Load(context.Background(), enc)
	if !errors.Is(err, keysets.ErrCleartextNotAllowed) {
		t.Fatalf("Load = %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "connhost keyset encrypt") || strings.Contains(msg, "Cleartext()") {
		t.Errorf("message %q", msg)
	}
}
