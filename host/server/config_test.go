package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/keysets"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	t.Parallel()
	d := server.DefaultConfig()
	if d.DataDir != "./var" || d.Listen != "127.0.0.1:7480" || d.PluginDir != "./bin/plugins" || d.LogFormat != "text" ||
		d.LogLevel != "info" || d.KEKEnv != "CONNHOST_KEK" || !d.AllowHostEnvCredentials || d.MaxConcurrentRuns != 16 ||
		d.RunTimeout != time.Hour || d.ShutdownTimeout != 30*time.Second || d.Environ == nil || d.LogOutput == nil {
		t.Errorf("defaults %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	cases := map[string]func(*server.Config){
		"log format":       func(c *server.Config) { c.LogFormat = "xml" },
		"log level":        func(c *server.Config) { c.LogLevel = "loud" },
		"listen":           func(c *server.Config) { c.Listen = "7480" },
		"two KEK sources":  func(c *server.Config) { c.KEKFile, c.KMSURI = "/k", "fake-kms://x" },
		"KEK env name":     func(c *server.Config) { c.KEKEnv = "A=B" },
		"run timeout":      func(c *server.Config) { c.RunTimeout = -time.Second },
		"shutdown timeout": func(c *server.Config) { c.ShutdownTimeout = -time.Second },
		"host ttl":         func(c *server.Config) { c.HostTTL = time.Second },
		"negative skew":    func(c *server.Config) { c.MaxClockSkew = -time.Second },
		"skew beyond ttl":  func(c *server.Config) { c.HostTTL, c.MaxClockSkew = 5*time.Second, 3*time.Second },
		"store scheme":     func(c *server.Config) { c.Store = "mysql://db/connhost" },
		"sqlite no file":   func(c *server.Config) { c.Store = "sqlite://" },
		"postgres bad URL": func(c *server.Config) { c.Store = "postgres://[::1" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := server.DefaultConfig()
			mutate(&c)
			if err := c.Validate(); !errors.Is(err, server.ErrInvalidConfig) {
				t.Errorf("Validate = %v, want ErrInvalidConfig", err)
			}
			if err := server.Run(context.Background(), c); !errors.Is(err, server.ErrInvalidConfig) {
				t.Errorf("Run = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestStoreLocation(t *testing.T) {
	t.Parallel()
	const password = "pw-canary-1234"
	tests := map[string]struct {
		store    string
		kind     server.StoreKind
		path     string
		redacted string
	}{
		"default: SQLite in the data dir": {kind: server.StoreSQLite, path: "/data/connhost.db", redacted: "sqlite:///data/connhost.db"},
		"SQLite elsewhere":                {store: "sqlite:///srv/connhost/store.db", kind: server.StoreSQLite, path: "/srv/connhost/store.db"},
		"PostgreSQL":                      {store: "postgres://connhost@db:5432/connhost", kind: server.StorePostgres},
		"PostgreSQL with a password": {store: "postgresql://connhost:" + password + "@db/connhost?sslmode=verify-full",
			kind: server.StorePostgres, redacted: "postgresql://connhost:xxxxx@db/connhost?sslmode=verify-full"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := server.Config{DataDir: "/data", Store: tc.store}
			loc, err := c.StoreLocation()
			if err != nil {
				t.Fatal(err)
			}
			if loc.Kind != tc.kind || (tc.path != "" && loc.Path != tc.path) || (tc.redacted != "" && loc.Redacted != tc.redacted) {
				t.Fatalf("StoreLocation = %+v", loc)
			}
			if strings.Contains(loc.Redacted, password) {
				t.Fatalf("the loggable form holds the password: %s", loc.Redacted)
			}
		})
	}
	c := server.Config{Store: "nope://u:" + password + "@h/x"}
	if _, err := c.StoreLocation(); err == nil || strings.Contains(err.Error(), password) {
		t.Fatalf("an unknown scheme: %v", err)
	}
}

// TestKEKSource (not parallel: it sets the process environment, which
// is where package keysets reads an env KEK).
func TestKEKSource(t *testing.T) {
	cases := map[string]struct {
		env       string
		file, uri string
		want      string // Kind; "" = error
	}{
		"none is dev mode":      {want: keysets.KEKKindCleartext},
		"env set":               {env: keysets.GenerateKEK(), want: keysets.KEKKindEnv},
		"env blank is unset":    {env: "  ", want: keysets.KEKKindCleartext},
		"file":                  {file: "/etc/connhost/kek", want: keysets.KEKKindFile},
		"kms":                   {uri: "fake-kms://key", want: keysets.KEKKindKMS},
		"env and file conflict": {env: keysets.GenerateKEK(), file: "/k"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv("CONNHOST_TEST_KEK", c.env)
			cfg := server.DefaultConfig()
			cfg.KEKEnv, cfg.KEKFile, cfg.KMSURI = "CONNHOST_TEST_KEK", c.file, c.uri
			src, err := cfg.KEKSource()
			switch {
			case c.want == "" && !errors.Is(err, server.ErrInvalidConfig):
				t.Errorf("got %v, want ErrInvalidConfig", err)
			case c.want != "" && (err != nil || src.Kind() != c.want):
				t.Errorf("got %v %v, want %s", src, err, c.want)
			}
		})
	}
}

// TestEnvKEKEncryptsTheKeyset (not parallel: t.Setenv): with the KEK
// variable set, the first start creates an encrypted keyset.
func TestEnvKEKEncryptsTheKeyset(t *testing.T) {
	t.Setenv("CONNHOST_TEST_ENV_KEK", keysets.GenerateKEK())
	cfg := baseConfig(t)
	cfg.KEKEnv = "CONNHOST_TEST_ENV_KEK"
	r := start(t, cfg)
	var info struct {
		Encrypted bool   `json:"encrypted"`
		KEK       string `json:"kek"`
	}
	r.ok(200, "GET", "/v1/keyset", nil, &info)
	if !info.Encrypted || info.KEK != "env" {
		t.Errorf("keyset %+v", info)
	}
	if err := r.shutdown(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.logs.String(), "INSECURE DEV MODE") {
		t.Error("dev-mode warning with a KEK")
	}
	// An env KEK lingers in /proc/<pid>/environ: serve says so, and what
	// to use instead.
	if logs := r.logs.String(); !strings.Contains(logs, "/proc/<pid>/environ") || !strings.Contains(logs, "--kek-file") {
		t.Error("no advice against the env KEK in the log")
	}
}

func TestReadToken(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		content string
		mode    os.FileMode
		want    error
	}{
		"missing":  {want: server.ErrNoToken},
		"empty":    {content: "\n", mode: 0o600, want: server.ErrNoToken},
		"readable": {content: "abc\n", mode: 0o644, want: server.ErrInsecureFile},
		"ok":       {content: "abc\n", mode: 0o600},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if c.mode != 0 {
				path := filepath.Join(dir, server.TokenFile)
				if err := os.WriteFile(path, []byte(c.content), c.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, c.mode); err != nil {
					t.Fatal(err)
				}
			}
			tok, err := server.ReadToken(dir)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %q %v, want %v", tok, err, c.want)
			}
			if c.want == nil && tok != "abc" {
				t.Errorf("token %q", tok)
			}
		})
	}
}

func TestInitKeyset(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	kek := filepath.Join(t.TempDir(), "kek")
	if err := keysets.WriteKEKFile(kek, keysets.GenerateKEK()); err != nil {
		t.Fatal(err)
	}
	info, err := server.InitKeyset(context.Background(), dir, keysets.KEKFromFile(kek), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Encrypted || info.KEK != "file" || len(info.Keys) != 1 || info.PrimaryKeyID == 0 {
		t.Errorf("info %+v", info)
	}
	if m := fileMode(t, filepath.Join(dir, server.KeysetFile)); m != 0o600 {
		t.Errorf("keyset mode %04o", m)
	}
	if m := fileMode(t, dir); m != 0o700 {
		t.Errorf("data dir mode %04o", m)
	}
	if _, err := server.InitKeyset(context.Background(), dir, keysets.KEKFromFile(kek), nil); !errors.Is(err, keysets.ErrExists) {
		t.Errorf("second init: %v", err)
	}
}
