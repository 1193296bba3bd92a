package broker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/connhost/connhost/keysets"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/hashicorp/go-hclog"
)

// canary is a secret value that must never appear outside the child env.
const canary = "CANARY-c0ffee-5ecret-9b1d"

var demoAuth = manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"DEMO_TOKEN"}}

type fixture struct {
	t       *testing.T
	dir     string
	st      *sqlite.Store
	ks      *keysets.Keyset
	ksCfg   keysets.Config
	logs    *bytes.Buffer
	broker  *Broker
	hostEnv map[string]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, sqlite.Config{DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := keysets.GenerateKEK()
	kekPath := filepath.Join(dir, "kek")
	if err := keysets.WriteKEKFile(kekPath, kek); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	cfg := keysets.Config{Path: filepath.Join(dir, "keyset.json"), KEK: keysets.KEKFromFile(kekPath), Logger: logger}
	ks, err := keysets.Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: dir, st: st, ks: ks, ksCfg: cfg, logs: logs, hostEnv: map[string]string{}}
	f.broker = f.newBroker(ks, true)
	if _, err := st.UpsertConnector(ctx, store.ConnectorRegistration{
		Key: "demo", Version: "1.0.0", Manifest: json.RawMessage(`{}`), Path: "/plugins/demo",
		SHA256: strings.Repeat("ab", 32),
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) newBroker(ks Keyset, allowEnv bool) *Broker {
	f.t.Helper()
	cfg := Config{
		Store:        f.st,
		HostEnv:      func(k string) (string, bool) { v, ok := f.hostEnv[k]; return v, ok },
		AllowHostEnv: allowEnv,
		Audit:        &audit.Log{Store: f.st},
		Logger:       hclog.New(&hclog.LoggerOptions{Output: f.logs, Level: hclog.Trace}),
	}
	if ks != nil {
		cfg.Keyset = ks
	}
	b, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) connection() string {
	f.t.Helper()
	c, err := f.st.CreateConnection(context.Background(), store.NewConnection{ConnectorKey: "demo", Label: "x"})
	if err != nil {
		f.t.Fatal(err)
	}
	return c.ID
}

func (f *fixture) capture(id, value string) {
	f.t.Helper()
	if _, err := f.broker.Capture(context.Background(), Capture{
		ConnectionID: id, Auth: demoAuth, Values: map[string]string{"DEMO_TOKEN": value}, Actor: "operator",
	}); err != nil {
		f.t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code failure.Code) {
	t.Helper()
	if got := failure.CodeOf(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
	if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "stale-host-value") {
		t.Fatalf("error string leaks a secret: %v", err)
	}
}

func TestResolveStoredCredentialWinsOverHostEnv(t *testing.T) {
	t.Parallel()
	for name, env := range map[string]map[string]string{
		"host env absent":       {},
		"host env empty string": {"DEMO_TOKEN": ""},
		"host env stale value":  {"DEMO_TOKEN": "stale-host-value"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.hostEnv = env
			id := f.connection()
			f.capture(id, canary)
			res, err := f.broker.Resolve(context.Background(), Target{ConnectionID: id, Auth: demoAuth})
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != SourceStored || res.Values["DEMO_TOKEN"] != canary {
				t.Fatalf("resolution = source %s names %v", res.Source, res.Names())
			}
		})
	}
}

// The unavailable matrix: each refusal is static_secret_credential_unavailable,
// never a fallback to the host environment even when it holds a value.
func TestResolveRefusesUnavailableStoredCredential(t *testing.T) {
	t.Parallel()
	tests := map[string]func(f *fixture, id string) *Broker{
		"revoked": func(f *fixture, id string) *Broker {
			if _, err := f.broker.Revoke(context.Background(), id, "operator"); err != nil {
				f.t.Fatal(err)
			}
			return f.broker
		},
		"deleted": func(f *fixture, id string) *Broker {
			if _, err := f.broker.Delete(context.Background(), id, "operator"); err != nil {
				f.t.Fatal(err)
			}
			return f.broker
		},
		"quarantined": func(f *fixture, id string) *Broker {
			if _, err := f.st.QuarantineCredential(context.Background(), id); err != nil {
				f.t.Fatal(err)
			}
			return f.broker
		},
		"corrupted ciphertext": func(f *fixture, id string) *Broker {
			cred, err := f.st.GetCredential(context.Background(), id)
			if err != nil {
				f.t.Fatal(err)
			}
			bad := bytes.Clone(cred.Ciphertext)
			bad[len(bad)-1] ^= 0xff
			if err := f.st.ReplaceCiphertext(context.Background(), id, cred.Ciphertext, bad, cred.KeyID); err != nil {
				f.t.Fatal(err)
			}
			return f.broker
		},
		"missing keyset": func(f *fixture, id string) *Broker {
			return f.newBroker(nil, true)
		},
		"wrong keyset (another operator's keys)": func(f *fixture, id string) *Broker {
			other, err := keysets.Create(context.Background(), keysets.Config{
				Path: filepath.Join(f.dir, "other.json"), KEK: keysets.Cleartext(), Logger: hclog.NewNullLogger()})
			if err != nil {
				f.t.Fatal(err)
			}
			return f.newBroker(other, true)
		},
		"wrong KEK": func(f *fixture, id string) *Broker {
			// A wrong KEK cannot load the keyset: the host runs without
			// one and every stored credential is unavailable.
			t := f.t
			wrong := filepath.Join(f.dir, "wrong-kek")
			if err := keysets.WriteKEKFile(wrong, keysets.GenerateKEK()); err != nil {
				t.Fatal(err)
			}
			_, err := keysets.Load(context.Background(), keysets.Config{Path: f.ksCfg.Path,
				KEK: keysets.KEKFromFile(wrong), Logger: hclog.NewNullLogger()})
			if !errors.Is(err, keysets.ErrWrongKEK) {
				t.Fatalf("Load with wrong KEK = %v, want ErrWrongKEK", err)
			}
			return f.newBroker(nil, true)
		},
	}
	for name, setup := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.hostEnv = map[string]string{"DEMO_TOKEN": "stale-host-value"}
			id := f.connection()
			f.capture(id, canary)
			b := setup(f, id)
			res, err := b.Resolve(context.Background(), Target{ConnectionID: id, Auth: demoAuth})
			wantCode(t, err, failure.StaticSecretUnavailable)
			if len(res.Values) != 0 {
				t.Fatalf("refusal carried values for %v", res.Names())
			}
		})
	}
}

func TestCiphertextCopiedToAnotherConnectionDoesNotDecrypt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.connection(), f.connection()
	f.capture(a, canary)
	credA, err := f.st.GetCredential(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	// Plant A's ciphertext on B's row, as an attacker with DB access might.
	if _, err := f.st.CaptureCredential(context.Background(), store.SealedCredential{
		ConnectionID: b, Kind: store.CredentialStaticSecret, Names: []string{"DEMO_TOKEN"},
		Ciphertext: credA.Ciphertext, KeyID: credA.KeyID,
	}); err != nil {
		t.Fatal(err)
	}
	_, err = f.broker.Resolve(context.Background(), Target{ConnectionID: b, Auth: demoAuth})
	wantCode(t, err, failure.StaticSecretUnavailable)
	// A still resolves.
	if res, err := f.broker.Resolve(context.Background(), Target{ConnectionID: a, Auth: demoAuth}); err != nil || res.Values["DEMO_TOKEN"] != canary {
		t.Fatalf("A no longer resolves: %v", err)
	}
}

func TestResolveNeverStored(t *testing.T) {
	t.Parallel()
	auth2 := manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"APP_USER", "APP_PASSWORD"}}
	tests := map[string]struct {
		env      map[string]string
		auth     manifest.Auth
		allowEnv bool
		want     failure.Code
		source   Source
	}{
		"every name set in host env":    {env: map[string]string{"DEMO_TOKEN": "h"}, auth: demoAuth, allowEnv: true, source: SourceHostEnv},
		"two names set":                 {env: map[string]string{"APP_USER": "u", "APP_PASSWORD": "p"}, auth: auth2, allowEnv: true, source: SourceHostEnv},
		"name absent":                   {env: map[string]string{}, auth: demoAuth, allowEnv: true, want: failure.CredentialsRequired},
		"name empty string":             {env: map[string]string{"DEMO_TOKEN": ""}, auth: demoAuth, allowEnv: true, want: failure.CredentialsRequired},
		"one of two names empty":        {env: map[string]string{"APP_USER": "u", "APP_PASSWORD": ""}, auth: auth2, allowEnv: true, want: failure.CredentialsRequired},
		"host env credentials disabled": {env: map[string]string{"DEMO_TOKEN": "h"}, auth: demoAuth, want: failure.CredentialsRequired},
		"auth kind none":                {auth: manifest.Auth{Kind: manifest.AuthNone}, source: SourceNone},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.hostEnv = tc.env
			b := f.newBroker(f.ks, tc.allowEnv)
			id := f.connection()
			res, err := b.Resolve(context.Background(), Target{ConnectionID: id, Auth: tc.auth})
			if tc.want != "" {
				wantCode(t, err, tc.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != tc.source {
				t.Fatalf("source = %s, want %s", res.Source, tc.source)
			}
			for n, v := range tc.env {
				if res.Values[n] != v {
					t.Fatalf("value of %s not resolved from host env", n)
				}
			}
		})
	}
}

// Presence answers from credential state alone, with no keyset anywhere.
func TestPresenceMatrix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	active, revoked, deleted, never := f.connection(), f.connection(), f.connection(), f.connection()
	for _, id := range []string{active, revoked, deleted} {
		f.capture(id, canary)
	}
	if _, err := f.broker.Revoke(context.Background(), revoked, "operator"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.broker.Delete(context.Background(), deleted, "operator"); err != nil {
		t.Fatal(err)
	}
	held := f.ks.Info()
	other := keysets.Info{Keys: []keysets.KeyInfo{{ID: held.PrimaryKeyID + 1, Status: keysets.StatusEnabled}}}
	disabled := keysets.Info{Keys: []keysets.KeyInfo{{ID: held.PrimaryKeyID, Status: keysets.StatusDisabled}}}
	for name, keys := range map[string]KeyInfo{
		"the keyset that sealed it": infoOnly{held},
		"another keyset":            infoOnly{other},
		"its key disabled":          infoOnly{disabled},
		"no keyset":                 nil,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The presence gets key ids and states, never key material.
			p := Presence{Store: f.st, Keys: keys}
			usable := name == "the keyset that sealed it"
			for id, want := range map[string]bool{active: usable, revoked: false, deleted: false, never: false, "conn_unknown": false} {
				got, err := p.HasActiveCredential(context.Background(), id)
				if err != nil || got != want {
					t.Errorf("HasActiveCredential(%s) = %v, %v; want %v", id, got, err, want)
				}
				key, missing, err := p.KeyMissing(context.Background(), id)
				wantMissing := id == active && !usable
				if err != nil || missing != wantMissing || (missing && key != held.PrimaryKeyID) {
					t.Errorf("KeyMissing(%s) = %d, %v, %v; want missing %v", id, key, missing, err, wantMissing)
				}
			}
		})
	}
}

// infoOnly describes a keyset and holds no key.
type infoOnly struct{ info keysets.Info }

func (i infoOnly) Info() keysets.Info { return i.info }

func TestRotateRewrapDisableOldKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	ids := make([]string, 5)
	for i := range ids {
		ids[i] = f.connection()
		f.capture(ids[i], canary+string(rune('a'+i)))
	}
	// An undecryptable row must be quarantined, not abort the rewrap.
	bad := f.connection()
	if _, err := f.st.CaptureCredential(ctx, store.SealedCredential{ConnectionID: bad, Kind: store.CredentialStaticSecret,
		Names: []string{"DEMO_TOKEN"}, Ciphertext: []byte("\x01\x00\x00\x00\x01garbage-ciphertext"), KeyID: 1}); err != nil {
		t.Fatal(err)
	}
	oldPrimary := f.ks.PrimaryKeyID()
	if _, err := keysets.Rotate(ctx, f.ksCfg); err != nil {
		t.Fatal(err)
	}
	ks2, err := keysets.Load(ctx, f.ksCfg)
	if err != nil {
		t.Fatal(err)
	}
	b2 := f.newBroker(ks2, false)
	rep, err := b2.Rewrap(ctx, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rewrapped != 5 || len(rep.Quarantined) != 1 || rep.Quarantined[0] != bad || rep.Scanned != 6 {
		t.Fatalf("rewrap report = %+v", rep)
	}
	if _, err := keysets.Disable(ctx, f.ksCfg, oldPrimary); err != nil {
		t.Fatal(err)
	}
	ks3, err := keysets.Load(ctx, f.ksCfg)
	if err != nil {
		t.Fatal(err)
	}
	b3 := f.newBroker(ks3, false)
	for i, id := range ids {
		res, err := b3.Resolve(ctx, Target{ConnectionID: id, Auth: demoAuth})
		if err != nil || res.Values["DEMO_TOKEN"] != canary+string(rune('a'+i)) {
			t.Fatalf("credential %d does not resolve after rotate+rewrap+disable: %v", i, err)
		}
		cred, _ := f.st.GetCredentialMeta(ctx, id)
		if cred.KeyID != ks3.PrimaryKeyID() {
			t.Fatalf("credential %d key id = %d, want primary %d", i, cred.KeyID, ks3.PrimaryKeyID())
		}
	}
	if meta, _ := f.st.GetCredentialMeta(ctx, bad); meta.State != store.CredentialQuarantined {
		t.Fatalf("bad credential state = %s, want quarantined", meta.State)
	}
	// A second rewrap finds everything current.
	rep, err = b3.Rewrap(ctx, "operator")
	if err != nil || rep.Rewrapped != 0 || rep.Current != 5 {
		t.Fatalf("second rewrap = %+v, %v", rep, err)
	}
}

func TestRotateStampsAndKeepsConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	id := f.connection()
	if _, err := f.broker.Rotate(ctx, Capture{ConnectionID: id, Auth: demoAuth, Values: map[string]string{"DEMO_TOKEN": "rotated-value"}}); !errors.Is(err, store.ErrCredentialNotFound) {
		t.Fatalf("rotate before capture = %v, want ErrCredentialNotFound", err)
	}
	f.capture(id, "first-value")
	meta, err := f.broker.Rotate(ctx, Capture{ConnectionID: id, Auth: demoAuth, Values: map[string]string{"DEMO_TOKEN": canary}})
	if err != nil || meta.RotatedAt.IsZero() {
		t.Fatalf("rotate = %+v, %v", meta, err)
	}
	res, err := f.broker.Resolve(ctx, Target{ConnectionID: id, Auth: demoAuth})
	if err != nil || res.Values["DEMO_TOKEN"] != canary {
		t.Fatalf("resolve after rotate: %v", err)
	}
}

func TestCaptureValidation(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		auth   manifest.Auth
		values map[string]string
		also   error // a more specific sentinel the error must match
	}{
		"too short":            {auth: demoAuth, values: map[string]string{"DEMO_TOKEN": canary[:MinValueBytes-1]}, also: ErrValueTooShort},
		"no values":            {auth: demoAuth, values: map[string]string{}},
		"missing required":     {auth: demoAuth, values: map[string]string{"OTHER": canary}},
		"empty value":          {auth: demoAuth, values: map[string]string{"DEMO_TOKEN": ""}},
		"blank value":          {auth: demoAuth, values: map[string]string{"DEMO_TOKEN": strings.Repeat(" ", MinValueBytes+4)}},
		"short blank value":    {auth: demoAuth, values: map[string]string{"DEMO_TOKEN": " \t \n"}},
		"bad name":             {auth: demoAuth, values: map[string]string{"DEMO TOKEN": canary}},
		"NUL in value":         {auth: demoAuth, values: map[string]string{"DEMO_TOKEN": canary + "\x00"}},
		"oversize value":       {auth: demoAuth, values: map[string]string{"DEMO_TOKEN": strings.Repeat(canary, MaxValueBytes/len(canary)+1)}},
		"connector takes none": {auth: manifest.Auth{Kind: manifest.AuthNone}, values: map[string]string{"DEMO_TOKEN": canary}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			id := f.connection()
			_, err := f.broker.Capture(context.Background(), Capture{ConnectionID: id, Auth: tc.auth, Values: tc.values})
			if !errors.Is(err, ErrInvalidValues) {
				t.Fatalf("Capture = %v, want ErrInvalidValues", err)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Fatalf("Capture = %v, want it to match %v too", err, tc.also)
			}
			if tc.also == nil && errors.Is(err, ErrValueTooShort) {
				t.Fatalf("Capture = %v, matches ErrValueTooShort", err)
			}
			for _, v := range tc.values {
				if len(v) >= 4 && strings.Contains(err.Error(), v[:4]) {
					t.Fatalf("error leaks the value: %v", err)
				}
			}
			if strings.Contains(err.Error(), canary) {
				t.Fatalf("error leaks the value: %v", err)
			}
			if has, _ := f.st.HasActiveCredential(context.Background(), id); has {
				t.Fatal("an invalid capture stored a credential")
			}
		})
	}
}

// The canary never reaches the SQLite file (or its WAL), audit rows, logs
// or error strings.
func TestCanaryNeverPersistedInClear(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	ids := []string{f.connection(), f.connection()}
	for _, id := range ids {
		f.capture(id, canary)
	}
	if _, err := f.broker.Rotate(ctx, Capture{ConnectionID: ids[0], Auth: demoAuth, Values: map[string]string{"DEMO_TOKEN": canary}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.broker.Revoke(ctx, ids[1], "operator"); err != nil {
		t.Fatal(err)
	}
	_, err := f.broker.Resolve(ctx, Target{ConnectionID: ids[1], Auth: demoAuth})
	wantCode(t, err, failure.StaticSecretUnavailable)
	_, err = f.broker.Capture(ctx, Capture{ConnectionID: ids[0], Auth: demoAuth, Values: map[string]string{"DEMO_TOKEN": canary, "EXTRA": canary}})
	if err == nil || strings.Contains(err.Error(), canary) {
		t.Fatalf("capture error = %v", err)
	}
	page, err := f.st.ListAudit(ctx, store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) < 4 {
		t.Fatalf("audit has %d events, want the lifecycle recorded", len(page.Events))
	}
	auditJSON, _ := json.Marshal(page.Events)
	needles := [][]byte{[]byte(canary), []byte(base64.StdEncoding.EncodeToString([]byte(canary)))}
	for _, n := range needles {
		if bytes.Contains(auditJSON, n) {
			t.Fatal("canary in audit rows")
		}
		if bytes.Contains(f.logs.Bytes(), n) {
			t.Fatal("canary in logs")
		}
	}
	// Every file of the data dir, WAL and SHM included, while open.
	err = filepath.Walk(f.dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("canary found in %s", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
