package keysets_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/connhost/connhost/keysets"
)

// Example shows the whole lifecycle: a KEK file, a keyset encrypted under
// it, then rotate → rewrap → disable.
func Example() {
	dir, err := os.MkdirTemp("", "keysets-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// `connhost keyset init`: a fresh KEK in a 0600 file, then the keyset.
	kekPath := filepath.Join(dir, "kek")
	if err := keysets.WriteKEKFile(kekPath, keysets.GenerateKEK()); err != nil {
		panic(err)
	}
	cfg := keysets.Config{Path: filepath.Join(dir, "keyset.json"), KEK: keysets.KEKFromFile(kekPath)}
	ks, err := keysets.Create(ctx, cfg)
	if err != nil {
		panic(err)
	}
	oldKey := ks.PrimaryKeyID()
	ad := []byte("connection-1/static_secret")
	ct, _ := ks.AEAD().Encrypt([]byte("app-password"), ad)

	// `connhost keyset rotate`: a new primary; old ciphertexts still decrypt.
	if _, err := keysets.Rotate(ctx, cfg); err != nil {
		panic(err)
	}
	ks, err = keysets.Load(ctx, cfg)
	if err != nil {
		panic(err)
	}

	// `connhost keyset rewrap`: re-encrypt what is under an older key.
	if id, _ := keysets.KeyIDOf(ct); id != ks.PrimaryKeyID() {
		pt, err := ks.AEAD().Decrypt(ct, ad)
		if err != nil {
			panic(err)
		}
		ct, _ = ks.AEAD().Encrypt(pt, ad)
	}

	// Then the old key can go.
	info, err := keysets.Disable(ctx, cfg, oldKey)
	if err != nil {
		panic(err)
	}
	for _, k := range info.Keys {
		fmt.Println(k.Type, k.Status, "primary:", k.Primary)
	}
	ks, _ = keysets.Load(ctx, cfg)
	pt, err := ks.AEAD().Decrypt(ct, ad)
	fmt.Println(string(pt), err)
	// Output:
	// AES256_GCM DISABLED primary: false
	// AES256_GCM ENABLED primary: true
	// app-password <nil>
}
