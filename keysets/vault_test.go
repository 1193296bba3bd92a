package keysets_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/connhost/connhost/keysets"
)

// fakeVault is a Vault server with one transit key: enough of
// /v1/{mount}/encrypt/{name} and /decrypt/{name} for Tink's hcvault client,
// with real AES-GCM underneath so a wrong key or associated data fails.
type fakeVault struct {
	token string
	key   string // transit key name
	aead  cipher.AEAD
	calls atomic.Int32
}

func newFakeVault(t *testing.T, token, keyName string) (*fakeVault, *httptest.Server) {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	v := &fakeVault{token: token, key: keyName, aead: gcm}
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	return v, srv
}

func (v *fakeVault) fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []string{msg}})
}

func (v *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.calls.Add(1)
	if r.Header.Get("X-Vault-Token") != v.token {
		v.fail(w, http.StatusForbidden, "permission denied")
		return
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		v.fail(w, http.StatusMethodNotAllowed, "unsupported operation")
		return
	}
	var body struct {
		Plaintext      string `json:"plaintext"`
		Ciphertext     string `json:"ciphertext"`
		AssociatedData string `json:"associated_data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		v.fail(w, http.StatusBadRequest, "bad JSON")
		return
	}
	ad, err := base64.StdEncoding.DecodeString(body.AssociatedData)
	if err != nil {
		v.fail(w, http.StatusBadRequest, "associated_data is not base64")
		return
	}
	reply := func(data map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	}
	switch r.URL.Path {
	case "/v1/transit/encrypt/" + v.key:
		pt, err := base64.StdEncoding.DecodeString(body.Plaintext)
		if err != nil {
			v.fail(w, http.StatusBadRequest, "plaintext is not base64")
			return
		}
		nonce := make([]byte, v.aead.NonceSize())
		_, _ = rand.Read(nonce)
		ct := v.aead.Seal(nonce, nonce, pt, ad)
		reply(map[string]any{"ciphertext": "vault:v1:" + base64.StdEncoding.EncodeToString(ct), "key_version": 1})
	case "/v1/transit/decrypt/" + v.key:
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(body.Ciphertext, "vault:v1:"))
		if err != nil || len(raw) < v.aead.NonceSize() {
			v.fail(w, http.StatusBadRequest, "invalid ciphertext")
			return
		}
		n := v.aead.NonceSize()
		pt, err := v.aead.Open(nil, raw[:n], raw[n:], ad)
		if err != nil {
			v.fail(w, http.StatusBadRequest, "cipher: message authentication failed")
			return
		}
		reply(map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)})
	default:
		v.fail(w, http.StatusNotFound, "no handler for route")
	}
}

// TestVaultTransitKEK: an hcvault:// KMS URI works with no client
// registered by the caller. The keyset is created and loaded through Vault
// transit, the file holds only the Vault-wrapped keyset, and a wrong token,
// a missing token, an unknown key or an unreachable server are typed
// errors that never quote the token.
func TestVaultTransitKEK(t *testing.T) {
	const token = "hvs.CANARY-vault-token-7f3a"
	vault, srv := newFakeVault(t, token, "connhost")
	// The URI names a host that does not resolve: VAULT_ADDR wins, as it
	// does for every Vault client (an agent or a proxy in front of Vault).
	uri := "hcvault://vault.invalid:8200/transit/keys/connhost"
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", token)
	t.Setenv("VAULT_MAX_RETRIES", "0")

	cfg := newConfig(t, kek{src: keysets.KEKFromURI(uri), kind: keysets.KEKKindKMS})
	ctx := context.Background()
	created, err := keysets.Create(ctx, cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got := vault.calls.Load(); got == 0 {
		t.Fatal("Create did not call Vault")
	}
	if info := created.Info(); info.KEK != keysets.KEKKindKMS {
		t.Errorf("Info.KEK = %q, want %q", info.KEK, keysets.KEKKindKMS)
	}
	file, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(file, []byte("encryptedKeyset")) || bytes.Contains(file, []byte("keyData")) {
		t.Fatalf("keyset file is not wrapped by the KEK:\n%s", file)
	}

	loaded, err := keysets.Load(ctx, cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	ct, err := created.AEAD().Encrypt([]byte("payload"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := loaded.AEAD().Decrypt(ct, []byte("ad")); err != nil || string(pt) != "payload" {
		t.Fatalf("loaded keyset does not decrypt the created keyset's ciphertext: %q, %v", pt, err)
	}
	if _, err := keysets.Rotate(ctx, cfg); err != nil {
		t.Fatalf("Rotate under the Vault KEK: %v", err)
	}

	for name, tc := range map[string]struct {
		env  map[string]string
		uri  string
		want error
		text string
	}{
		"wrong token":     {env: map[string]string{"VAULT_TOKEN": "hvs.not-the-token"}, uri: uri, want: keysets.ErrWrongKEK},
		"no token":        {env: map[string]string{"VAULT_TOKEN": ""}, uri: uri, want: keysets.ErrBadKEK, text: "VAULT_TOKEN is not set"},
		"unknown key":     {uri: "hcvault://vault.invalid:8200/transit/keys/other", want: keysets.ErrWrongKEK},
		"unreachable":     {env: map[string]string{"VAULT_ADDR": "http://127.0.0.1:1"}, uri: uri, want: keysets.ErrWrongKEK},
		"unknown scheme":  {uri: "acme-kms://keys/connhost", want: keysets.ErrBadKEK, text: "hcvault://"},
		"no host in URI":  {uri: "hcvault:///transit/keys/connhost", want: keysets.ErrBadKEK, text: "hcvault://"},
		"malformed path":  {uri: "hcvault://vault.invalid:8200/connhost", want: keysets.ErrBadKEK},
		"bad VAULT_ADDR ": {env: map[string]string{"VAULT_ADDR": "http://[::1"}, uri: uri, want: keysets.ErrBadKEK},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c := cfg
			c.KEK = keysets.KEKFromURI(tc.uri)
			_, err := keysets.Load(ctx, c)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Load: err = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "hvs.") {
				t.Errorf("error quotes the Vault token: %v", err)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not say %q", err, tc.text)
			}
		})
	}
}
