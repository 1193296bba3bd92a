package keysets

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// FuzzDecode feeds arbitrary keyset files to the parser, under a KEK and in
// dev mode: it must never panic, and anything it accepts must be usable.
func FuzzDecode(f *testing.F) {
	ctx := context.Background()
	key := make([]byte, KEKSize)
	for i := range key {
		key[i] = byte(i)
	}
	kek, err := rawKEK(bytes.Clone(key))
	if err != nil {
		f.Fatal(err)
	}
	encCfg := Config{Path: "fuzz.json", KEK: KEKFromEnv("UNUSED")}
	devCfg := Config{Path: "fuzz.json", KEK: Cleartext(), Logger: hclog.NewNullLogger()}

	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		f.Fatal(err)
	}
	enc, err := encodeVerified(ctx, h, encCfg, kek)
	if err != nil {
		f.Fatal(err)
	}
	var clearJSON bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&clearJSON)); err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add(clearJSON.Bytes())
	f.Add([]byte(`{"encryptedKeyset":""}`))
	f.Add([]byte(`{"primaryKeyId":1,"key":[]}`))
	f.Add([]byte(`[]`))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []struct {
			cfg Config
			kek tink.AEADWithContext
		}{{encCfg, kek}, {devCfg, nil}} {
			h, err := decode(ctx, data, c.cfg, c.kek)
			if err != nil {
				continue
			}
			// Whatever decode accepts has a primary that Info lists.
			info := describe(h, c.cfg, c.kek != nil)
			if _, err := findKey(info, info.PrimaryKeyID); err != nil {
				t.Fatalf("accepted keyset's primary %d is not among its keys", info.PrimaryKeyID)
			}
			// aead.New may still refuse (e.g. a non-AEAD key type); Load
			// reports that as ErrInvalidKeyset. It must not panic.
			_, _ = newKeyset(h, c.cfg, c.kek != nil)
		}
	})
}

// FuzzKeyIDOf checks KeyIDOf against its definition on arbitrary input.
func FuzzKeyIDOf(f *testing.F) {
	f.Add([]byte{0x01, 0, 0, 0, 42, 1, 2, 3})
	f.Add([]byte{0x00, 1, 2, 3, 4})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, ct []byte) {
		id, ok := KeyIDOf(ct)
		wantOK := len(ct) >= 5 && ct[0] == 0x01
		if ok != wantOK {
			t.Fatalf("KeyIDOf(%x) ok = %v, want %v", ct, ok, wantOK)
		}
		if ok && id != binary.BigEndian.Uint32(ct[1:5]) {
			t.Fatalf("KeyIDOf(%x) = %d", ct, id)
		}
		if !ok && id != 0 {
			t.Fatalf("KeyIDOf(%x) = %d with ok=false", ct, id)
		}
	})
}
