package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/keysets"
	"github.com/google/go-cmp/cmp"
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
			before := snapshot(t, cfg.DataDir)
			logs, err := runOnce(t, cfg)
			if diff := cmp.Diff(before, snapshot(t, cfg.DataDir)); diff != "" {
				t.Errorf("the refused start changed the data dir (-before +after):\n%s", diff)
			}
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
			if strings.Contains(logs, "no KEK is configured") {
				t.Errorf("the refusal was logged as well as returned (the caller prints it once):\n%s", logs)
			}
			if strings.Contains(logs, "INSECURE DEV MODE") || strings.Contains(strings.ToLower(logs), "cleartext") {
				t.Errorf("start logged the cleartext warning for an encrypted keyset:\n%s", logs)
			}
		})
	}
}

// The last step of a rotation: disable the old key. Refused, typed and
// audited, while a credential is sealed under it, for the primary and for
// an unknown key; after a rewrap it is disabled, loaded at once (the
// credential still decrypts for a run) and audited; enable undoes it.
func TestDisableKeyAfterRewrap(t *testing.T) {
	t.Parallel()
	const secret = "tok-disable-key-5c1e"
	r := start(t, baseConfig(t))
	conns := []apitypes.Connection{createDemo(r, map[string]any{"records": 1}), createDemo(r, map[string]any{"records": 1})}
	for _, c := range conns {
		r.ok(http.StatusOK, http.MethodPut, "/v1/connections/"+c.ID+"/credential",
			apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": secret}}, nil)
	}
	r.ok(http.StatusOK, http.MethodPost, "/v1/connections/"+conns[1].ID+"/credential/revoke", nil, nil)
	var before, rotated apitypes.KeysetInfo
	r.ok(http.StatusOK, http.MethodGet, "/v1/keyset", nil, &before)
	r.ok(http.StatusOK, http.MethodPost, "/v1/keyset/rotate", nil, &rotated)
	old := before.PrimaryKeyID
	path := func(id uint32, op string) string { return fmt.Sprintf("/v1/keyset/keys/%d/%s", id, op) }

	refusals := []struct {
		name   string
		path   string
		status int
		code   string
		msg    []string
	}{
		{"in use", path(old, "disable"), http.StatusConflict, string(failure.KeyInUse),
			[]string{"2 credential(s) (1 active, 1 revoked)", "connhost keyset rewrap"}},
		{"primary", path(rotated.PrimaryKeyID, "disable"), http.StatusConflict, string(failure.KeyIsPrimary),
			[]string{"primary key", "connhost keyset rotate"}},
		{"unknown", path(old+1, "disable"), http.StatusNotFound, string(failure.KeyNotFound), []string{"no key"}},
		{"unknown enable", path(old+1, "enable"), http.StatusNotFound, string(failure.KeyNotFound), []string{"no key"}},
		{"not a key id", "/v1/keyset/keys/abc/disable", http.StatusBadRequest, apitypes.CodeInvalidRequest, []string{"not a key id"}},
	}
	for _, tc := range refusals {
		res := r.call(http.MethodPost, tc.path, nil)
		if res.Status != tc.status {
			t.Fatalf("%s: %s, want %d", tc.name, res, tc.status)
		}
		body := res.ErrorBody(t)
		if body.Code != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, body.Code, tc.code)
		}
		for _, w := range tc.msg {
			if !strings.Contains(body.Message, w) {
				t.Errorf("%s: message %q lacks %q", tc.name, body.Message, w)
			}
		}
	}
	var info apitypes.KeysetInfo
	r.ok(http.StatusOK, http.MethodGet, "/v1/keyset", nil, &info)
	if status := keyStatus(info, old); status != keysets.StatusEnabled {
		t.Fatalf("a refused disable left key %d %s", old, status)
	}

	var rep apitypes.RewrapReport
	r.ok(http.StatusOK, http.MethodPost, "/v1/keyset/rewrap", nil, &rep)
	if rep.Rewrapped != 2 {
		t.Fatalf("rewrap %+v", rep)
	}
	var ch apitypes.KeyChange
	r.ok(http.StatusOK, http.MethodPost, path(old, "disable"), nil, &ch)
	if ch.KeyID != old || !ch.Changed || keyStatus(ch.Keyset, old) != keysets.StatusDisabled || ch.Keyset.PrimaryKeyID != rotated.PrimaryKeyID {
		t.Fatalf("disable: %+v", ch)
	}
	// Loaded at once: the host's keyset says so, and the credential (now
	// under the primary) still decrypts for a run.
	r.ok(http.StatusOK, http.MethodGet, "/v1/keyset", nil, &info)
	if keyStatus(info, old) != keysets.StatusDisabled {
		t.Errorf("the host still has key %d %s", old, keyStatus(info, old))
	}
	var run apitypes.Run
	r.ok(http.StatusAccepted, http.MethodPost, "/v1/connections/"+conns[0].ID+"/runs", nil, &run)
	if fin := r.waitRun(run.ID); fin.Status != "succeeded" {
		t.Errorf("run after disable: %+v", fin)
	}
	r.ok(http.StatusOK, http.MethodPost, path(old, "disable"), nil, &ch)
	if ch.Changed {
		t.Errorf("second disable changed something: %+v", ch)
	}
	r.ok(http.StatusOK, http.MethodPost, path(old, "enable"), nil, &ch)
	if !ch.Changed || keyStatus(ch.Keyset, old) != keysets.StatusEnabled {
		t.Errorf("enable: %+v", ch)
	}

	// Every attempt is audited, refusals with their code; no value.
	var audit apitypes.List[apitypes.AuditEvent]
	res := r.ok(http.StatusOK, http.MethodGet, "/v1/audit?limit=200", nil, &audit)
	if strings.Contains(string(res.Body), secret) {
		t.Error("the audit log holds the credential value")
	}
	var got []string
	for _, e := range audit.Items {
		if strings.HasPrefix(e.Operation, "keyset.key.") {
			got = append(got, e.Operation+" "+e.TargetID+" "+e.Outcome+" "+e.Detail["failure_code"]+" "+e.Detail["changed"])
		}
	}
	slices.Sort(got)
	oldID, primaryID, unknownID := fmt.Sprint(old), fmt.Sprint(rotated.PrimaryKeyID), fmt.Sprint(old+1)
	want := []string{
		"keyset.key.disable " + oldID + " failed key_in_use ",
		"keyset.key.disable " + oldID + " succeeded  false",
		"keyset.key.disable " + oldID + " succeeded  true",
		"keyset.key.disable " + primaryID + " failed key_is_primary ",
		"keyset.key.disable " + unknownID + " failed key_not_found ",
		"keyset.key.enable " + oldID + " succeeded  true",
		"keyset.key.enable " + unknownID + " failed key_not_found ",
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("audit rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := r.shutdown(); err != nil {
		t.Fatal(err)
	}
}

func keyStatus(info apitypes.KeysetInfo, id uint32) string {
	for _, k := range info.Keys {
		if k.ID == id {
			return k.Status
		}
	}
	return ""
}

// From dev mode to an encrypted keyset: a host serving a cleartext keyset
// with a credential stops; EncryptKeyset is refused while it runs, then
// encrypts; the host refuses to start without the KEK (naming `keyset
// init`'s absence) and starts with it, and the existing credential still
// decrypts for a run. A KEK against a cleartext keyset names `connhost
// keyset encrypt`.
func TestEncryptDevKeysetThenServe(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t)
	cfg.KEKEnv = "CONNHOST_TEST_UNSET_KEK"
	r := start(t, cfg)
	c := createDemo(r, map[string]any{"records": 1})
	r.ok(http.StatusOK, http.MethodPut, "/v1/connections/"+c.ID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": "tok-encrypt-0d9a"}}, nil)
	kekPath := filepath.Join(t.TempDir(), "kek")
	if err := keysets.WriteKEKFile(kekPath, keysets.GenerateKEK()); err != nil {
		t.Fatal(err)
	}
	kek := keysets.KEKFromFile(kekPath)
	ctx := context.Background()
	if _, err := server.EncryptKeyset(ctx, cfg.DataDir, "", kek, nil); !errors.Is(err, server.ErrDataDirInUse) {
		t.Fatalf("EncryptKeyset while serving = %v, want ErrDataDirInUse", err)
	}
	if err := r.shutdown(); err != nil {
		t.Fatal(err)
	}

	withKEK := cfg
	withKEK.KEKFile = kekPath
	if _, err := runOnce(t, withKEK); !errors.Is(err, keysets.ErrCleartextNotAllowed) || !strings.Contains(err.Error(), "connhost keyset encrypt") {
		t.Fatalf("start with a KEK on the cleartext keyset = %v", err)
	}
	info, err := server.EncryptKeyset(ctx, cfg.DataDir, "", kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Encrypted {
		t.Fatalf("info %+v", info)
	}
	if m := fileMode(t, filepath.Join(cfg.DataDir, server.KeysetFile)); m != 0o600 {
		t.Errorf("keyset mode %04o", m)
	}
	if _, err := server.EncryptKeyset(ctx, cfg.DataDir, "", kek, nil); !errors.Is(err, keysets.ErrAlreadyEncrypted) {
		t.Errorf("second EncryptKeyset = %v", err)
	}
	if _, err := runOnce(t, cfg); !errors.Is(err, server.ErrKEKRequired) {
		t.Fatalf("start without the KEK = %v", err)
	}

	r = start(t, withKEK)
	var ks apitypes.KeysetInfo
	r.ok(http.StatusOK, http.MethodGet, "/v1/keyset", nil, &ks)
	if !ks.Encrypted || ks.KEK != keysets.KEKKindFile {
		t.Errorf("keyset %+v", ks)
	}
	var run apitypes.Run
	r.ok(http.StatusAccepted, http.MethodPost, "/v1/connections/"+c.ID+"/runs", nil, &run)
	if fin := r.waitRun(run.ID); fin.Status != "succeeded" {
		t.Errorf("run under the encrypted keyset: %+v", fin)
	}
	if err := r.shutdown(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.logs.String(), "INSECURE DEV MODE") {
		t.Error("dev-mode warning with the encrypted keyset")
	}
}

// A keyset `keyset init` made under the KEK file it generated in the data
// dir, served with a KEK variable set, does not decrypt: the refusal names
// the data dir's keyset.kek and the flag that uses it, and changes nothing.
// (Not parallel: it sets a process variable, as keysets reads the real
// environment.)
func TestWrongKEKNamesTheDataDirKEKFile(t *testing.T) {
	const name = "CONNHOST_TEST_WRONG_KEK"
	cfg := baseConfig(t)
	cfg.KEKEnv = name
	kek := filepath.Join(cfg.DataDir, server.DefaultKEKFile)
	if err := keysets.WriteKEKFile(kek, keysets.GenerateKEK()); err != nil {
		t.Fatal(err)
	}
	if _, err := server.InitKeyset(context.Background(), cfg.DataDir, keysets.KEKFromFile(kek), nil); err != nil {
		t.Fatal(err)
	}
	t.Setenv(name, keysets.GenerateKEK())
	before := snapshot(t, cfg.DataDir)
	_, err := runOnce(t, cfg)
	if !errors.Is(err, keysets.ErrWrongKEK) {
		t.Fatalf("Run = %v, want ErrWrongKEK", err)
	}
	for _, w := range []string{"does not decrypt under KEK env " + name, "--kek-file " + kek, name + " unset"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if diff := cmp.Diff(before, snapshot(t, cfg.DataDir)); diff != "" {
		t.Errorf("the refused start changed the data dir (-before +after):\n%s", diff)
	}
}
