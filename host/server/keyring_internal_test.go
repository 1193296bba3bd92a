package server

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/keysets"
	"github.com/hashicorp/go-hclog"
)

// scriptedUse answers CredentialKeyUse from a script, one answer per call,
// the last repeating.
type scriptedUse struct {
	mu      sync.Mutex
	answers []store.KeyUse
	calls   int
}

func (s *scriptedUse) CredentialKeyUse(context.Context, uint32) (store.KeyUse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.calls, len(s.answers)-1)
	s.calls++
	return s.answers[i], nil
}

// A credential sealed under the key between the count and the write (a
// host that had not reloaded a rotation) is caught by the second count:
// the key is enabled again, in the file and in the host, and the disable
// is refused key_in_use.
func TestDisableKeyUndoneWhenSealedMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kcfg := keysets.Config{Path: filepath.Join(t.TempDir(), KeysetFile), KEK: keysets.Cleartext(), Logger: hclog.NewNullLogger()}
	first, err := keysets.Create(ctx, kcfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keysets.Rotate(ctx, kcfg); err != nil {
		t.Fatal(err)
	}
	ks, err := keysets.Load(ctx, kcfg)
	if err != nil {
		t.Fatal(err)
	}
	use := &scriptedUse{answers: []store.KeyUse{{}, {Active: 1}}}
	ring := &keyring{cfg: kcfg, log: hclog.NewNullLogger(), use: use}
	ring.cur.Store(ks)
	old := first.PrimaryKeyID()

	_, err = ring.DisableKey(ctx, "operator", old)
	if !failure.Has(err, failure.KeyInUse) {
		t.Fatalf("DisableKey = %v, want key_in_use", err)
	}
	if use.calls != 2 {
		t.Errorf("%d counts, want 2 (before the write and after)", use.calls)
	}
	if !ring.Info().Holds(old) {
		t.Error("the host's keyset has the key disabled")
	}
	onDisk, err := keysets.Load(ctx, kcfg)
	if err != nil {
		t.Fatal(err)
	}
	if !onDisk.Info().Holds(old) {
		t.Error("the keyset file has the key disabled")
	}
}
