package keysets_test

import (
	"bytes"
	"context"
	"errors"
	"os"
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
