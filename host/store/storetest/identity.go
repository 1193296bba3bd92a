package storetest

import (
	"testing"

	"github.com/connhost/connhost/host/store"
)

// A store's id is written once: the first writer wins, later ones read
// it back.
func testStoreIdentity(t *testing.T, f *fixture) {
	if id, ok := must2(f.s.StoreID(f.ctx))(t); ok || id != "" {
		t.Fatalf("a new store has id %q", id)
	}
	if got := must(f.s.InitStoreID(f.ctx, "store_a"))(t); got != "store_a" {
		t.Fatalf("InitStoreID = %q", got)
	}
	if got := must(f.s.InitStoreID(f.ctx, "store_b"))(t); got != "store_a" {
		t.Fatalf("a second InitStoreID = %q, want the first id", got)
	}
	if id, ok := must2(f.s.StoreID(f.ctx))(t); !ok || id != "store_a" {
		t.Fatalf("StoreID = %q, %v", id, ok)
	}
}

// The key ids a keyset must hold: those of every stored ciphertext, of
// any state — a revoked credential still decrypts for a rewrap — but not
// of a deleted one, whose ciphertext is gone.
func testCredentialKeyIDs(t *testing.T, f *fixture) {
	if ids := must(f.s.CredentialKeyIDs(f.ctx))(t); len(ids) != 0 {
		t.Fatalf("key ids of an empty store: %v", ids)
	}
	for _, k := range []struct {
		id    uint32
		state store.CredentialState
	}{{42, store.CredentialActive}, {7, store.CredentialRevoked}, {9, store.CredentialDeleted}, {42, store.CredentialActive}} {
		c := f.connection("alpha")
		sc := sealed(c.ID, "ct")
		sc.KeyID = k.id
		must(f.s.CaptureCredential(f.ctx, sc))(t)
		var err error
		switch k.state {
		case store.CredentialRevoked:
			_, err = f.s.RevokeCredential(f.ctx, c.ID)
		case store.CredentialDeleted:
			_, err = f.s.DeleteCredential(f.ctx, c.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	diff(t, "key ids", []uint32{7, 42}, must(f.s.CredentialKeyIDs(f.ctx))(t))
}
