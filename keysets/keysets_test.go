package keysets_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/subtle"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	aesgcmpb "github.com/tink-crypto/tink-go/v2/proto/aes_gcm_go_proto"
	"github.com/tink-crypto/tink-go/v2/testing/fakekms"
	"github.com/tink-crypto/tink-go/v2/tink"
	"google.golang.org/protobuf/proto"

	"github.com/connhost/connhost/keysets"
)

// testEnvKEK is the variable env-KEK tests set with t.Setenv.
const testEnvKEK = "CONNHOST_TEST_KEK"

var registerFakeKMS = sync.OnceFunc(func() {
	c, err := fakekms.NewClient("fake-kms://")
	if err != nil {
		panic(err)
	}
	registry.RegisterKMSClient(c)
})

// kek is one KEK source under test plus the secret a test needs to read the
// file with Tink directly (and to check that it never leaks).
type kek struct {
	src    keysets.Source
	kind   string
	secret string // base64 KEK, KMS URI, or "" in dev mode
}

// kekKinds lists every source; env cases use t.Setenv, so callers of
// newKEK for "env" must not be parallel.
var kekKinds = []string{keysets.KEKKindEnv, keysets.KEKKindFile, keysets.KEKKindKMS, keysets.KEKKindCleartext}

func newKEK(t testing.TB, kind string) kek {
	t.Helper()
	switch kind {
	case keysets.KEKKindEnv:
		v := keysets.GenerateKEK()
		t.Setenv(testEnvKEK, v)
		return kek{src: keysets.KEKFromEnv(testEnvKEK), kind: kind, secret: v}
	case keysets.KEKKindFile:
		v := keysets.GenerateKEK()
		p := filepath.Join(t.TempDir(), "kek")
		if err := keysets.WriteKEKFile(p, v); err != nil {
			t.Fatalf("WriteKEKFile: %v", err)
		}
		return kek{src: keysets.KEKFromFile(p), kind: kind, secret: v}
	case keysets.KEKKindKMS:
		registerFakeKMS()
		uri, err := fakekms.NewKeyURI()
		if err != nil {
			t.Fatalf("fakekms.NewKeyURI: %v", err)
		}
		return kek{src: keysets.KEKFromURI(uri), kind: kind, secret: uri}
	case keysets.KEKKindCleartext:
		return kek{src: keysets.Cleartext(), kind: kind}
	}
	t.Fatalf("unknown KEK kind %q", kind)
	return kek{}
}

// logBuffer is a goroutine-safe sink for a test hclog logger.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger(t testing.TB) (hclog.Logger, *logBuffer) {
	t.Helper()
	buf := &logBuffer{}
	return hclog.New(&hclog.LoggerOptions{Name: "keysets-test", Output: buf, Level: hclog.Trace}), buf
}

func newConfig(t testing.TB, k kek) keysets.Config {
	t.Helper()
	log, _ := newLogger(t)
	return keysets.Config{Path: filepath.Join(t.TempDir(), "keyset.json"), KEK: k.src, Logger: log}
}

// readHandle opens the keyset file with Tink alone, as tinkey or another
// Tink implementation would: proof of format compatibility, and the way
// tests get at the key material they then look for.
func readHandle(t testing.TB, path string, k kek) *keyset.Handle {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open keyset: %v", err)
	}
	defer f.Close()
	r := keyset.NewJSONReader(f)
	var master tink.AEAD
	switch k.kind {
	case keysets.KEKKindCleartext:
		h, err := insecurecleartextkeyset.Read(r)
		if err != nil {
			t.Fatalf("read cleartext keyset with Tink: %v", err)
		}
		return h
	case keysets.KEKKindKMS:
		master, err = fakekms.NewAEAD(k.secret)
	default:
		raw, decErr := base64.StdEncoding.DecodeString(k.secret)
		if decErr != nil {
			t.Fatalf("decode KEK: %v", decErr)
		}
		master, err = subtle.NewAESGCM(raw)
	}
	if err != nil {
		t.Fatalf("KEK AEAD: %v", err)
	}
	h, err := keyset.ReadWithAssociatedData(r, master, []byte(keysets.AssociatedData))
	if err != nil {
		t.Fatalf("read encrypted keyset with Tink: %v", err)
	}
	return h
}

// secretForms returns every representation of the keyset's key material a
// leak could take: raw key bytes in raw, hex and base64 forms, and the
// base64 of each serialized key (what a cleartext Tink JSON file holds).
func secretForms(t testing.TB, h *keyset.Handle) map[string][]byte {
	t.Helper()
	forms := map[string][]byte{}
	for _, k := range insecurecleartextkeyset.KeysetMaterial(h).GetKey() {
		var key aesgcmpb.AesGcmKey
		if err := proto.Unmarshal(k.GetKeyData().GetValue(), &key); err != nil {
			t.Fatalf("unmarshal AesGcmKey: %v", err)
		}
		raw := key.GetKeyValue()
		if len(raw) != 32 {
			t.Fatalf("key %d has %d bytes, want 32", k.GetKeyId(), len(raw))
		}
		id := k.GetKeyId()
		forms[fmt.Sprintf("%d raw", id)] = raw
		forms[fmt.Sprintf("%d hex", id)] = []byte(hex.EncodeToString(raw))
		forms[fmt.Sprintf("%d base64", id)] = []byte(base64.StdEncoding.EncodeToString(raw))
		forms[fmt.Sprintf("%d base64raw", id)] = []byte(base64.RawStdEncoding.EncodeToString(raw))
		forms[fmt.Sprintf("%d base64url", id)] = []byte(base64.RawURLEncoding.EncodeToString(raw))
		forms[fmt.Sprintf("%d serialized", id)] = []byte(base64.StdEncoding.EncodeToString(k.GetKeyData().GetValue()))
	}
	return forms
}

// leaks lists the secret forms found in data.
func leaks(data []byte, forms map[string][]byte) []string {
	var found []string
	for name, f := range forms {
		if bytes.Contains(data, f) {
			found = append(found, name)
		}
	}
	slices.Sort(found)
	return found
}

func mustEncrypt(t testing.TB, ks *keysets.Keyset, pt, ad string) []byte {
	t.Helper()
	ct, err := ks.AEAD().Encrypt([]byte(pt), []byte(ad))
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	return ct
}

func mustDecrypt(t testing.TB, ks *keysets.Keyset, ct []byte, ad, want string) {
	t.Helper()
	pt, err := ks.AEAD().Decrypt(ct, []byte(ad))
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if string(pt) != want {
		t.Fatalf("Decrypt = %q, want %q", pt, want)
	}
}

func keyIDs(info keysets.Info) []uint32 {
	ids := make([]uint32, len(info.Keys))
	for i, k := range info.Keys {
		ids[i] = k.ID
	}
	return ids
}

func TestCreateLoadRoundTrip(t *testing.T) {
	for _, kind := range kekKinds {
		t.Run(kind, func(t *testing.T) {
			k := newKEK(t, kind)
			cfg := newConfig(t, k)
			ctx := context.Background()

			created, err := keysets.Create(ctx, cfg)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			ct := mustEncrypt(t, created, "hunter2", "conn-1/static_secret")

			loaded, err := keysets.Load(ctx, cfg)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			mustDecrypt(t, loaded, ct, "conn-1/static_secret", "hunter2")
			if diff := cmp.Diff(created.Info(), loaded.Info()); diff != "" {
				t.Errorf("Info after Load differs from Create (-create +load):\n%s", diff)
			}

			info := loaded.Info()
			want := keysets.Info{
				Path:         cfg.Path,
				PrimaryKeyID: loaded.PrimaryKeyID(),
				Keys: []keysets.KeyInfo{{
					ID:      loaded.PrimaryKeyID(),
					Status:  keysets.StatusEnabled,
					Type:    keysets.KeyTypeAES256GCM,
					TypeURL: "type.googleapis.com/google.crypto.tink.AesGcmKey",
					Primary: true,
				}},
				Encrypted: kind != keysets.KEKKindCleartext,
				KEK:       kind,
			}
			if diff := cmp.Diff(want, info); diff != "" {
				t.Errorf("Info mismatch (-want +got):\n%s", diff)
			}
			if id, ok := keysets.KeyIDOf(ct); !ok || id != loaded.PrimaryKeyID() {
				t.Errorf("KeyIDOf(ciphertext) = %d, %v; want %d, true", id, ok, loaded.PrimaryKeyID())
			}

			fi, err := os.Stat(cfg.Path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("keyset file mode = %04o, want 0600", got)
			}

			data, err := os.ReadFile(cfg.Path)
			if err != nil {
				t.Fatal(err)
			}
			found := leaks(data, secretForms(t, readHandle(t, cfg.Path, k)))
			if kind == keysets.KEKKindCleartext {
				// Control: the detector does see key material in a
				// cleartext file, so its silence below means something.
				if len(found) == 0 {
					t.Fatal("cleartext keyset file shows no key material: the leak detector is broken")
				}
				return
			}
			if len(found) != 0 {
				t.Errorf("encrypted keyset file contains key material: %v", found)
			}
			var top map[string]json.RawMessage
			if err := json.Unmarshal(data, &top); err != nil {
				t.Fatalf("keyset file is not JSON: %v", err)
			}
			if top["encryptedKeyset"] == nil || top["key"] != nil {
				t.Errorf("keyset file is not a Tink EncryptedKeyset:\n%s", data)
			}
		})
	}
}

func TestLoadWrongKEKIsTypedError(t *testing.T) {
	for _, kind := range []string{keysets.KEKKindEnv, keysets.KEKKindFile, keysets.KEKKindKMS} {
		t.Run(kind, func(t *testing.T) {
			right := newKEK(t, kind)
			cfg := newConfig(t, right)
			if _, err := keysets.Create(context.Background(), cfg); err != nil {
				t.Fatalf("Create: %v", err)
			}
			wrong := newKEK(t, kind) // for env this replaces the variable's value
			cfg.KEK = wrong.src

			_, err := keysets.Load(context.Background(), cfg)
			var de *keysets.DecryptError
			if !errors.As(err, &de) || !errors.Is(err, keysets.ErrWrongKEK) {
				t.Fatalf("Load with wrong KEK: err = %v, want *DecryptError wrapping ErrWrongKEK", err)
			}
			if de.Path != cfg.Path {
				t.Errorf("DecryptError.Path = %q, want %q", de.Path, cfg.Path)
			}
			for _, s := range []string{right.secret, wrong.secret} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains a KEK secret", err)
				}
			}
		})
	}
}

func TestLoadRefusesOtherAssociatedData(t *testing.T) {
	t.Parallel()
	k := newKEK(t, keysets.KEKKindFile)
	cfg := newConfig(t, k)

	// A keyset the same KEK encrypted for some other purpose (other
	// associated data) must not load as connhost's keyset.
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(k.secret)
	if err != nil {
		t.Fatal(err)
	}
	master, err := subtle.NewAESGCM(raw)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewJSONWriter(&buf), master, []byte("some-other-purpose")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keysets.Load(context.Background(), cfg); !errors.Is(err, keysets.ErrWrongKEK) {
		t.Fatalf("Load = %v, want ErrWrongKEK", err)
	}
}

func TestBadKEKIsTypedAndRedacted(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 16))
	kekDir := t.TempDir()
	badFile := filepath.Join(kekDir, "bad")
	if err := os.WriteFile(badFile, []byte("not base64 at all!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		env    *string // value for testEnvKEK, nil = unset
		src    keysets.Source
		secret string
	}{
		"env unset":        {src: keysets.KEKFromEnv("CONNHOST_TEST_KEK_UNSET")},
		"env empty":        {env: ptr(""), src: keysets.KEKFromEnv(testEnvKEK)},
		"env not base64":   {env: ptr("s3cr3t-v@lue!"), src: keysets.KEKFromEnv(testEnvKEK), secret: "s3cr3t-v@lue!"},
		"env 16 bytes":     {env: ptr(short), src: keysets.KEKFromEnv(testEnvKEK), secret: short},
		"file missing":     {src: keysets.KEKFromFile(filepath.Join(kekDir, "missing"))},
		"file not base64":  {src: keysets.KEKFromFile(badFile), secret: "not base64 at all!"},
		"kms unregistered": {src: keysets.KEKFromURI("nokms://projects/p/keys/SECRETKEYNAME"), secret: "SECRETKEYNAME"},
	}
	// A valid keyset to load, so only the KEK can fail.
	good := newKEK(t, keysets.KEKKindFile)
	cfg := newConfig(t, good)
	if _, err := keysets.Create(context.Background(), cfg); err != nil {
		t.Fatalf("Create: %v", err)
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.env != nil {
				t.Setenv(testEnvKEK, *tc.env)
			}
			c := cfg
			c.KEK = tc.src
			_, err := keysets.Load(context.Background(), c)
			var ke *keysets.KEKError
			if !errors.As(err, &ke) || !errors.Is(err, keysets.ErrBadKEK) {
				t.Fatalf("Load: err = %v, want *KEKError wrapping ErrBadKEK", err)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error %q leaks the KEK value", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestInsecurePermissionsRefused(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		keysetMode os.FileMode
		kekMode    os.FileMode
		wantFile   string
		wantMode   os.FileMode
	}{
		"keyset world readable": {keysetMode: 0o644, kekMode: 0o600, wantFile: "keyset", wantMode: 0o644},
		"keyset group readable": {keysetMode: 0o640, kekMode: 0o600, wantFile: "keyset", wantMode: 0o640},
		"keyset other readable": {keysetMode: 0o604, kekMode: 0o600, wantFile: "keyset", wantMode: 0o604},
		"keyset group writable": {keysetMode: 0o620, kekMode: 0o600, wantFile: "keyset", wantMode: 0o620},
		"kek world readable":    {keysetMode: 0o600, kekMode: 0o644, wantFile: "KEK", wantMode: 0o644},
		"kek group readable":    {keysetMode: 0o600, kekMode: 0o640, wantFile: "KEK", wantMode: 0o640},
		"kek owner read only":   {keysetMode: 0o400, kekMode: 0o400},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k := newKEK(t, keysets.KEKKindFile)
			cfg := newConfig(t, k)
			if _, err := keysets.Create(context.Background(), cfg); err != nil {
				t.Fatalf("Create: %v", err)
			}
			kekPath := strings.TrimPrefix(k.src.String(), "file ")
			if err := os.Chmod(cfg.Path, tc.keysetMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(kekPath, tc.kekMode); err != nil {
				t.Fatal(err)
			}

			_, err := keysets.Load(context.Background(), cfg)
			if tc.wantFile == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			var pe *keysets.PermissionError
			if !errors.As(err, &pe) || !errors.Is(err, keysets.ErrInsecurePermissions) {
				t.Fatalf("Load: err = %v, want *PermissionError wrapping ErrInsecurePermissions", err)
			}
			wantPath := cfg.Path
			if tc.wantFile == "KEK" {
				wantPath = kekPath
			}
			want := keysets.PermissionError{Path: wantPath, Mode: tc.wantMode, File: tc.wantFile}
			if diff := cmp.Diff(want, *pe); diff != "" {
				t.Errorf("PermissionError mismatch (-want +got):\n%s", diff)
			}
			msg := err.Error()
			if !strings.Contains(msg, wantPath) || !strings.Contains(msg, fmt.Sprintf("%04o", tc.wantMode)) {
				t.Errorf("error %q does not name path and mode", msg)
			}
			if strings.Contains(msg, k.secret) || strings.Contains(msg, "encryptedKeyset") {
				t.Errorf("error %q leaks file contents", msg)
			}
		})
	}
}

func TestCleartextRequiresExplicitDevMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dev := newConfig(t, newKEK(t, keysets.KEKKindCleartext))
	if _, err := keysets.Create(ctx, dev); err != nil {
		t.Fatalf("Create dev keyset: %v", err)
	}
	enc := newConfig(t, newKEK(t, keysets.KEKKindFile))
	if _, err := keysets.Create(ctx, enc); err != nil {
		t.Fatalf("Create encrypted keyset: %v", err)
	}

	tests := map[string]struct {
		cfg  keysets.Config
		want error
	}{
		"cleartext file with file KEK": {cfg: keysets.Config{Path: dev.Path, KEK: enc.KEK}, want: keysets.ErrCleartextNotAllowed},
		"no KEK at all":                {cfg: keysets.Config{Path: dev.Path}, want: keysets.ErrInvalidConfig},
		"dev mode without logger":      {cfg: keysets.Config{Path: dev.Path, KEK: keysets.Cleartext()}, want: keysets.ErrInvalidConfig},
		"encrypted file in dev mode":   {cfg: keysets.Config{Path: enc.Path, KEK: keysets.Cleartext(), Logger: hclog.NewNullLogger()}, want: keysets.ErrKEKRequired},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := keysets.Load(ctx, tc.cfg); !errors.Is(err, tc.want) {
				t.Fatalf("Load = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCleartextWarnsOnEveryLoad(t *testing.T) {
	t.Parallel()
	const warning = "INSECURE DEV MODE"
	tests := map[string]struct {
		kind  string
		loads int
		want  int // warnings after Create and the loads
	}{
		"dev mode warns on create and each load": {kind: keysets.KEKKindCleartext, loads: 3, want: 4},
		"encrypted never warns":                  {kind: keysets.KEKKindFile, loads: 3, want: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			log, buf := newLogger(t)
			cfg := newConfig(t, newKEK(t, tc.kind))
			cfg.Logger = log
			if _, err := keysets.Create(context.Background(), cfg); err != nil {
				t.Fatalf("Create: %v", err)
			}
			for i := range tc.loads {
				if _, err := keysets.Load(context.Background(), cfg); err != nil {
					t.Fatalf("Load %d: %v", i, err)
				}
				if tc.want > 0 && strings.Count(buf.String(), warning) != i+2 {
					t.Fatalf("after load %d: %d warnings, want %d; log:\n%s", i+1, strings.Count(buf.String(), warning), i+2, buf)
				}
			}
			out := buf.String()
			if got := strings.Count(out, warning); got != tc.want {
				t.Fatalf("%d warnings, want %d; log:\n%s", got, tc.want, out)
			}
			if tc.want > 0 && (!strings.Contains(out, "[WARN]") || !strings.Contains(out, cfg.Path)) {
				t.Errorf("warning is not at WARN level with the path; log:\n%s", out)
			}
		})
	}
}

func TestRotateKeepsOldCiphertextsAndMovesPrimary(t *testing.T) {
	for _, kind := range kekKinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			cfg := newConfig(t, newKEK(t, kind))
			before, err := keysets.Create(ctx, cfg)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			oldID := before.PrimaryKeyID()
			oldCT := mustEncrypt(t, before, "old secret", "ad")

			info, err := keysets.Rotate(ctx, cfg)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			if info.PrimaryKeyID == oldID {
				t.Fatalf("Rotate kept primary %d", oldID)
			}
			want := []keysets.KeyInfo{
				{ID: oldID, Status: keysets.StatusEnabled, Type: keysets.KeyTypeAES256GCM, TypeURL: "type.googleapis.com/google.crypto.tink.AesGcmKey"},
				{ID: info.PrimaryKeyID, Status: keysets.StatusEnabled, Type: keysets.KeyTypeAES256GCM, TypeURL: "type.googleapis.com/google.crypto.tink.AesGcmKey", Primary: true},
			}
			if diff := cmp.Diff(want, info.Keys); diff != "" {
				t.Errorf("keys after Rotate (-want +got):\n%s", diff)
			}

			after, err := keysets.Load(ctx, cfg)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(info, after.Info()); diff != "" {
				t.Errorf("Rotate's Info differs from Load's (-rotate +load):\n%s", diff)
			}
			mustDecrypt(t, after, oldCT, "ad", "old secret")
			newCT := mustEncrypt(t, after, "new secret", "ad")
			if id, ok := keysets.KeyIDOf(newCT); !ok || id != info.PrimaryKeyID {
				t.Errorf("KeyIDOf(new ciphertext) = %d, %v; want new primary %d", id, ok, info.PrimaryKeyID)
			}
			if id, ok := keysets.KeyIDOf(oldCT); !ok || id != oldID {
				t.Errorf("KeyIDOf(old ciphertext) = %d, %v; want old primary %d", id, ok, oldID)
			}
			// A Keyset loaded before the rotation does not know the new key:
			// processes must Load again after a rotation.
			if _, err := before.AEAD().Decrypt(newCT, []byte("ad")); err == nil {
				t.Error("pre-rotation Keyset decrypted a ciphertext of the new key")
			}
		})
	}
}

func TestDisableAfterRewrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := newConfig(t, newKEK(t, keysets.KEKKindFile))
	first, err := keysets.Create(ctx, cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	oldID := first.PrimaryKeyID()
	oldCT := mustEncrypt(t, first, "secret", "conn-1")

	if _, err := keysets.Rotate(ctx, cfg); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	rotated, err := keysets.Load(ctx, cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// Rewrap: what the host's rewrap job does for every stale credential.
	var rewrapped []byte
	if id, _ := keysets.KeyIDOf(oldCT); id != rotated.PrimaryKeyID() {
		pt, err := rotated.AEAD().Decrypt(oldCT, []byte("conn-1"))
		if err != nil {
			t.Fatalf("rewrap decrypt: %v", err)
		}
		rewrapped = mustEncrypt(t, rotated, string(pt), "conn-1")
	}
	if rewrapped == nil {
		t.Fatal("old ciphertext was not seen as stale")
	}

	info, err := keysets.Disable(ctx, cfg, oldID)
	if err != nil {
		t.Fatalf("Disable(old): %v", err)
	}
	if got := statusOf(info, oldID); got != keysets.StatusDisabled {
		t.Errorf("old key status = %q, want DISABLED", got)
	}
	disabled, err := keysets.Load(ctx, cfg)
	if err != nil {
		t.Fatalf("Load after Disable: %v", err)
	}
	mustDecrypt(t, disabled, rewrapped, "conn-1", "secret")
	if _, err := disabled.AEAD().Decrypt(oldCT, []byte("conn-1")); err == nil {
		t.Error("a ciphertext under the disabled key still decrypts")
	}

	refusals := map[string]struct {
		id   uint32
		want error
	}{
		"primary": {id: disabled.PrimaryKeyID(), want: keysets.ErrPrimaryKey},
		"unknown": {id: unusedKeyID(disabled.Info()), want: keysets.ErrKeyNotFound},
	}
	for name, tc := range refusals {
		t.Run("refuse "+name, func(t *testing.T) {
			if _, err := keysets.Disable(ctx, cfg, tc.id); !errors.Is(err, tc.want) {
				t.Fatalf("Disable(%d) = %v, want %v", tc.id, err, tc.want)
			}
		})
	}

	again, err := keysets.Disable(ctx, cfg, oldID)
	if err != nil {
		t.Fatalf("Disable twice: %v", err)
	}
	if diff := cmp.Diff(info, again); diff != "" {
		t.Errorf("second Disable changed the keyset (-first +second):\n%s", diff)
	}

	// Enable undoes a premature disable.
	if _, err := keysets.Enable(ctx, cfg, oldID); err != nil {
		t.Fatalf("Enable: %v", err)
	}
	reenabled, err := keysets.Load(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustDecrypt(t, reenabled, oldCT, "conn-1", "secret")
	if _, err := keysets.Enable(ctx, cfg, unusedKeyID(reenabled.Info())); !errors.Is(err, keysets.ErrKeyNotFound) {
		t.Errorf("Enable(unknown) = %v, want ErrKeyNotFound", err)
	}
}

// unusedKeyID returns a key id that is not in info.
func unusedKeyID(info keysets.Info) uint32 {
	ids := keyIDs(info)
	id := uint32(1)
	for slices.Contains(ids, id) {
		id++
	}
	return id
}

func statusOf(info keysets.Info, id uint32) string {
	for _, k := range info.Keys {
		if k.ID == id {
			return k.Status
		}
	}
	return ""
}

func TestInfoHasNoKeyMaterial(t *testing.T) {
	for _, kind := range kekKinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			k := newKEK(t, kind)
			cfg := newConfig(t, k)
			if _, err := keysets.Create(ctx, cfg); err != nil {
				t.Fatalf("Create: %v", err)
			}
			rotated, err := keysets.Rotate(ctx, cfg)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			loaded, err := keysets.Load(ctx, cfg)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			forms := secretForms(t, readHandle(t, cfg.Path, k))
			if len(forms) != 2*6 {
				t.Fatalf("expected forms for 2 keys, got %d", len(forms))
			}
			j1, err := json.Marshal(rotated)
			if err != nil {
				t.Fatal(err)
			}
			j2, err := json.Marshal(loaded.Info())
			if err != nil {
				t.Fatal(err)
			}
			surfaces := map[string][]byte{
				"Rotate Info JSON": j1,
				"Load Info JSON":   j2,
				"Keyset %v":        []byte(fmt.Sprintf("%v", loaded)),
				"Keyset %+v":       []byte(fmt.Sprintf("%+v", loaded)),
				"Keyset %#v":       []byte(fmt.Sprintf("%#v", loaded)),
				"Info %#v":         []byte(fmt.Sprintf("%#v", loaded.Info())),
			}
			for name, data := range surfaces {
				if found := leaks(data, forms); len(found) != 0 {
					t.Errorf("%s contains key material %v: %s", name, found, data)
				}
				if k.secret != "" && bytes.Contains(data, []byte(k.secret)) {
					t.Errorf("%s contains the KEK secret", name)
				}
			}
			if diff := cmp.Diff(keyIDs(rotated), keyIDs(loaded.Info())); diff != "" {
				t.Errorf("key ids differ (-rotate +load):\n%s", diff)
			}
		})
	}
}

func TestCreateRefusesOverwrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := newConfig(t, newKEK(t, keysets.KEKKindFile))
	if _, err := keysets.Create(ctx, cfg); err != nil {
		t.Fatalf("Create: %v", err)
	}
	before, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keysets.Create(ctx, cfg); !errors.Is(err, keysets.ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	after, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("second Create changed the keyset file")
	}
}

func TestWritesAreAtomicAndLeaveNoTempFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := newKEK(t, keysets.KEKKindFile)
	cfg := newConfig(t, k)
	dir := filepath.Dir(cfg.Path)
	wantFiles := []string{"keyset.json", "keyset.json.lock"}

	ks, err := keysets.Create(ctx, cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := keysets.Rotate(ctx, cfg); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if _, err := keysets.Disable(ctx, cfg, ks.PrimaryKeyID()); err != nil {
		t.Fatalf("Disable: %v", err)
	}
	if diff := cmp.Diff(wantFiles, dirNames(t, dir)); diff != "" {
		t.Errorf("files after writes (-want +got):\n%s", diff)
	}

	// A failed rotation (wrong KEK) leaves the file byte-identical.
	before, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.KEK = newKEK(t, keysets.KEKKindFile).src
	if _, err := keysets.Rotate(ctx, bad); !errors.Is(err, keysets.ErrWrongKEK) {
		t.Fatalf("Rotate with wrong KEK = %v, want ErrWrongKEK", err)
	}
	after, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("failed Rotate changed the keyset file")
	}
	if diff := cmp.Diff(wantFiles, dirNames(t, dir)); diff != "" {
		t.Errorf("files after failed rotate (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(cfg.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("keyset mode after rewrites = %v (err %v), want 0600", fi.Mode().Perm(), err)
	}

	// Rotate on a missing keyset neither creates it nor leaves a lock file.
	missing := cfg
	missing.Path = filepath.Join(t.TempDir(), "nope.json")
	if _, err := keysets.Rotate(ctx, missing); !errors.Is(err, keysets.ErrNotFound) {
		t.Fatalf("Rotate(missing) = %v, want ErrNotFound", err)
	}
	if got := dirNames(t, filepath.Dir(missing.Path)); len(got) != 0 {
		t.Errorf("Rotate(missing) left files: %v", got)
	}
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestConcurrentRotationsLoseNoKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := newConfig(t, newKEK(t, keysets.KEKKindFile))
	if _, err := keysets.Create(ctx, cfg); err != nil {
		t.Fatalf("Create: %v", err)
	}
	const workers, each = 3, 3
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := keysets.Rotate(ctx, cfg); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Rotate: %v", err)
	}
	ks, err := keysets.Load(ctx, cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := len(ks.Info().Keys), 1+workers*each; got != want {
		t.Fatalf("keyset has %d keys after %d rotations, want %d", got, workers*each, want)
	}
}

func TestLoadRefusesInvalidKeysets(t *testing.T) {
	t.Parallel()
	raw, err := keyset.NewHandle(aead.AES256GCMNoPrefixKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	var rawJSON bytes.Buffer
	if err := insecurecleartextkeyset.Write(raw, keyset.NewJSONWriter(&rawJSON)); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		data    []byte
		wantKEK error // loaded with a file KEK
		wantDev error // loaded in dev mode
	}{
		"empty":                {data: nil, wantKEK: keysets.ErrInvalidKeyset, wantDev: keysets.ErrInvalidKeyset},
		"not json":             {data: []byte("hello"), wantKEK: keysets.ErrInvalidKeyset, wantDev: keysets.ErrInvalidKeyset},
		"unrelated json":       {data: []byte(`{"a":1}`), wantKEK: keysets.ErrInvalidKeyset, wantDev: keysets.ErrInvalidKeyset},
		"bad encrypted":        {data: []byte(`{"encryptedKeyset":"!!"}`), wantKEK: keysets.ErrInvalidKeyset, wantDev: keysets.ErrKEKRequired},
		"garbage ciphertext":   {data: []byte(`{"encryptedKeyset":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`), wantKEK: keysets.ErrWrongKEK, wantDev: keysets.ErrKEKRequired},
		"bad cleartext":        {data: []byte(`{"primaryKeyId":1,"key":[{"keyId":"x"}]}`), wantKEK: keysets.ErrCleartextNotAllowed, wantDev: keysets.ErrInvalidKeyset},
		"raw prefix cleartext": {data: rawJSON.Bytes(), wantKEK: keysets.ErrCleartextNotAllowed, wantDev: keysets.ErrInvalidKeyset},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for kind, want := range map[string]error{keysets.KEKKindFile: tc.wantKEK, keysets.KEKKindCleartext: tc.wantDev} {
				cfg := newConfig(t, newKEK(t, kind))
				if err := os.WriteFile(cfg.Path, tc.data, 0o600); err != nil {
					t.Fatal(err)
				}
				if _, err := keysets.Load(context.Background(), cfg); !errors.Is(err, want) {
					t.Errorf("%s: Load = %v, want %v", kind, err, want)
				}
			}
		})
	}
}

func TestLoadMissingAndCancelled(t *testing.T) {
	t.Parallel()
	cfg := newConfig(t, newKEK(t, keysets.KEKKindFile))
	if _, err := keysets.Load(context.Background(), cfg); !errors.Is(err, keysets.ErrNotFound) {
		t.Fatalf("Load(missing) = %v, want ErrNotFound", err)
	}
	if _, err := keysets.Create(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := keysets.Load(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Load(cancelled) = %v, want context.Canceled", err)
	}
}

func TestKMSURINeverAppears(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := newKEK(t, keysets.KEKKindKMS)
	cfg := newConfig(t, k)
	if _, err := keysets.Create(ctx, cfg); err != nil {
		t.Fatalf("Create: %v", err)
	}
	wrong := newKEK(t, keysets.KEKKindKMS)
	bad := cfg
	bad.KEK = wrong.src
	_, loadErr := keysets.Load(ctx, bad)
	if !errors.Is(loadErr, keysets.ErrWrongKEK) {
		t.Fatalf("Load with other KMS key = %v, want ErrWrongKEK", loadErr)
	}
	// The fake KMS URI embeds its key; none of it may show.
	payload := strings.TrimPrefix(k.secret, "fake-kms://")
	for name, s := range map[string]string{
		"Source.String": k.src.String(),
		"Load error":    loadErr.Error(),
		"Config %+v":    fmt.Sprintf("%+v", cfg.KEK),
	} {
		if strings.Contains(s, payload) || strings.Contains(s, strings.TrimPrefix(wrong.secret, "fake-kms://")) {
			t.Errorf("%s shows the KMS URI: %s", name, s)
		}
	}
	if got, want := k.src.String(), "kms fake-kms://[redacted]"; got != want {
		t.Errorf("Source.String() = %q, want %q", got, want)
	}
}

func TestKeyIDOf(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		in     []byte
		wantID uint32
		wantOK bool
	}{
		"nil":           {in: nil},
		"too short":     {in: []byte{0x01, 0, 0, 1}},
		"raw prefix":    {in: []byte{0x00, 0, 0, 0, 1, 9, 9}},
		"legacy prefix": {in: []byte{0x02, 0, 0, 0, 1, 9}},
		"tink prefix":   {in: []byte{0x01, 0xde, 0xad, 0xbe, 0xef, 9, 9}, wantID: 0xdeadbeef, wantOK: true},
		"prefix only":   {in: []byte{0x01, 0, 0, 0, 7}, wantID: 7, wantOK: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			id, ok := keysets.KeyIDOf(tc.in)
			if id != tc.wantID || ok != tc.wantOK {
				t.Errorf("KeyIDOf(%x) = %d, %v; want %d, %v", tc.in, id, ok, tc.wantID, tc.wantOK)
			}
		})
	}
}

func TestGenerateAndWriteKEK(t *testing.T) {
	t.Parallel()
	a, b := keysets.GenerateKEK(), keysets.GenerateKEK()
	if a == b {
		t.Fatal("GenerateKEK returned the same key twice")
	}
	raw, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(raw) != keysets.KEKSize {
		t.Fatalf("GenerateKEK = %d bytes (err %v), want base64 of %d", len(raw), err, keysets.KEKSize)
	}

	dir := t.TempDir()
	tests := map[string]struct {
		path string
		kek  string
		want error
	}{
		"fresh file":        {path: filepath.Join(dir, "sub", "kek"), kek: a},
		"existing file":     {path: filepath.Join(dir, "sub", "kek"), kek: b, want: keysets.ErrExists},
		"malformed value":   {path: filepath.Join(dir, "bad"), kek: "tooshort", want: keysets.ErrBadKEK},
		"url-safe accepted": {path: filepath.Join(dir, "url"), kek: base64.RawURLEncoding.EncodeToString(raw)},
		"empty path":        {path: "", kek: a, want: keysets.ErrInvalidConfig},
	}
	// Sequential: "existing file" depends on "fresh file".
	for _, name := range []string{"fresh file", "existing file", "malformed value", "url-safe accepted", "empty path"} {
		tc := tests[name]
		t.Run(name, func(t *testing.T) {
			err := keysets.WriteKEKFile(tc.path, tc.kek)
			if !errors.Is(err, tc.want) {
				t.Fatalf("WriteKEKFile = %v, want %v", err, tc.want)
			}
			if err != nil {
				if strings.Contains(err.Error(), tc.kek) {
					t.Errorf("error %q leaks the KEK", err)
				}
				return
			}
			fi, err := os.Stat(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("KEK file mode = %04o, want 0600", fi.Mode().Perm())
			}
			cfg := keysets.Config{Path: filepath.Join(t.TempDir(), "ks.json"), KEK: keysets.KEKFromFile(tc.path)}
			if _, err := keysets.Create(context.Background(), cfg); err != nil {
				t.Fatalf("Create with written KEK file: %v", err)
			}
			if _, err := keysets.Load(context.Background(), cfg); err != nil {
				t.Fatalf("Load with written KEK file: %v", err)
			}
		})
	}
	got, err := os.ReadFile(filepath.Join(dir, "sub", "kek"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != a {
		t.Error("existing KEK file was overwritten")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	log := hclog.NewNullLogger()
	tests := map[string]struct {
		cfg  keysets.Config
		want error
	}{
		"env":                 {cfg: keysets.Config{Path: "k.json", KEK: keysets.KEKFromEnv(keysets.DefaultKEKEnv)}},
		"file":                {cfg: keysets.Config{Path: "k.json", KEK: keysets.KEKFromFile("kek")}},
		"kms":                 {cfg: keysets.Config{Path: "k.json", KEK: keysets.KEKFromURI("gcp-kms://projects/p/keys/k")}},
		"dev with logger":     {cfg: keysets.Config{Path: "k.json", KEK: keysets.Cleartext(), Logger: log}},
		"no path":             {cfg: keysets.Config{KEK: keysets.KEKFromEnv("X")}, want: keysets.ErrInvalidConfig},
		"no KEK":              {cfg: keysets.Config{Path: "k.json"}, want: keysets.ErrInvalidConfig},
		"dev without logger":  {cfg: keysets.Config{Path: "k.json", KEK: keysets.Cleartext()}, want: keysets.ErrInvalidConfig},
		"empty env name":      {cfg: keysets.Config{Path: "k.json", KEK: keysets.KEKFromEnv("")}, want: keysets.ErrInvalidConfig},
		"env name with =":     {cfg: keysets.Config{Path: "k.json", KEK: keysets.KEKFromEnv("A=B")}, want: keysets.ErrInvalidConfig},
		"empty KEK file path": {cfg: keysets.Config{Path: "k.json", KEK: keysets.KEKFromFile("")}, want: keysets.ErrInvalidConfig},
		"URI without scheme":  {cfg: keysets.Config{Path: "k.json", KEK: keysets.KEKFromURI("projects/p/keys/k")}, want: keysets.ErrInvalidConfig},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := tc.cfg.Validate(); !errors.Is(err, tc.want) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
		})
	}
}

func BenchmarkAEAD(b *testing.B) {
	cfg := newConfig(b, newKEK(b, keysets.KEKKindFile))
	ks, err := keysets.Create(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	secret := bytes.Repeat([]byte("s"), 100)
	ad := []byte("01J9Z7Q6M3W8/static_secret")
	a := ks.AEAD()
	ct, err := a.Encrypt(secret, ad)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Encrypt100B", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Encrypt(secret, ad); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Decrypt100B", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Decrypt(ct, ad); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	for _, kind := range []string{keysets.KEKKindEnv, keysets.KEKKindFile, keysets.KEKKindCleartext} {
		b.Run(kind, func(b *testing.B) {
			k := newKEK(b, kind)
			cfg := newConfig(b, k)
			cfg.Logger = hclog.NewNullLogger()
			if _, err := keysets.Create(context.Background(), cfg); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := keysets.Load(context.Background(), cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Holds: an enabled key decrypts what it sealed; a disabled or unknown
// one does not.
func TestInfoHolds(t *testing.T) {
	t.Parallel()
	info := keysets.Info{Keys: []keysets.KeyInfo{
		{ID: 1, Status: keysets.StatusEnabled}, {ID: 2, Status: keysets.StatusDisabled}, {ID: 3, Status: keysets.StatusDestroyed},
	}}
	for id, want := range map[uint32]bool{1: true, 2: false, 3: false, 4: false} {
		if got := info.Holds(id); got != want {
			t.Errorf("Holds(%d) = %v, want %v", id, got, want)
		}
	}
}
