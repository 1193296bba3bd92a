package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/cluster"
	"github.com/connhost/connhost/host/console"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/connhost/connhost/keysets"
	"github.com/hashicorp/go-hclog"
)

// Defaults of Config's zero fields.
const (
	DefaultDataDir           = "./var"
	DefaultListen            = "127.0.0.1:7480"
	DefaultPluginDir         = "./bin/plugins"
	DefaultLogFormat         = "text"
	DefaultLogLevel          = "info"
	DefaultKEKEnv            = keysets.DefaultKEKEnv
	DefaultMaxConcurrentRuns = 16
	DefaultRunTimeout        = time.Hour
	DefaultBackoffCap        = runner.DefaultBackoffCap
	DefaultUISessionLifetime = console.DefaultSessionLifetime
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultHostTTL           = cluster.DefaultTTL
	DefaultMaxClockSkew      = cluster.DefaultMaxClockSkew
)

// StoreEnv is the environment variable --store defaults from.
const StoreEnv = "CONNHOST_STORE"

// Files in the data dir.
const (
	// TokenFile holds the operator bearer token (0600).
	TokenFile = "operator.token"
	// KeysetFile holds the Tink keyset that encrypts stored credentials
	// (0600).
	KeysetFile = "keyset.json"
	// LockFile is locked by the running host: one host per data dir.
	LockFile = "serve.lock"
)

const sqliteFileName = sqlite.FileName

// Config configures Run. Build it once at start-up (the CLI maps its flags
// onto it), call Defaults, then Validate; Run does both.
type Config struct {
	// DataDir holds the SQLite store, the keyset and the operator token.
	// Created 0700 if missing. Default DefaultDataDir.
	DataDir string
	// Listen is the HTTP and gRPC address. Default DefaultListen
	// (loopback only).
	Listen string
	// PluginDir is scanned for connector plugins at start. Default
	// DefaultPluginDir.
	PluginDir string
	// LogFormat is "text" or "json". Default "text".
	LogFormat string
	// LogLevel is trace, debug, info, warn or error. Default "info".
	LogLevel string
	// KEKEnv names the environment variable holding a base64 KEK. It is
	// used only when that variable is set non-empty in the process
	// environment. Default DefaultKEKEnv (CONNHOST_KEK).
	KEKEnv string
	// KEKFile is the path of a KEK file (base64 of 32 bytes, mode 0600).
	KEKFile string
	// KMSURI is a KMS key URI: a client in Tink's KMS client registry
	// serves it, or, for hcvault:// URIs, HashiCorp Vault transit (see
	// keysets.KEKFromURI).
	KMSURI string
	// AllowHostEnvCredentials lets a connection that never stored a
	// credential take its auth.required values from the host environment.
	// The CLI flag --allow-host-env-credentials defaults to true for
	// compatibility; the zero value here is false (deny), the safe side.
	// DefaultConfig sets it true. A stored credential, even revoked or
	// deleted, never falls back to the host environment either way.
	AllowHostEnvCredentials bool
	// MaxConcurrentRuns is this host's worker pool: the most runs it has
	// at once, of every trigger (scheduled, retry, manual). Default
	// DefaultMaxConcurrentRuns.
	MaxConcurrentRuns uint
	// Store is the store URL: sqlite:///path/to/connhost.db, or
	// postgres://… (a libpq URL) for a store several hosts share. Default
	// (empty): the SQLite file in the data dir.
	Store string
	// KeysetFile is the keyset's path. Default <DataDir>/keyset.json.
	// Hosts of one cluster point at one keyset (or copies of it).
	KeysetFile string
	// TokenFile is the operator token's path. Default
	// <DataDir>/operator.token; hosts of one cluster share one token.
	TokenFile string
	// HostTTL is how long a host of a shared store may go without a
	// heartbeat before the others take its work back. Default
	// DefaultHostTTL.
	HostTTL time.Duration
	// MaxClockSkew is the largest clock difference between hosts the
	// cluster tolerates. Default DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	// ClockOffset shifts this host's clock (tests of clock skew only).
	ClockOffset time.Duration
	// NewStore starts an empty store on purpose in a data dir that was
	// initialised (its store was lost): without it such a start is
	// refused (ErrStoreMissing).
	NewStore bool
	// NewKeyset creates a new keyset on purpose although the store holds
	// credentials sealed under a keyset that is missing: without it such
	// a start is refused (ErrKeysetMissing). Those credentials stay
	// undecryptable until captured again.
	NewKeyset bool
	// RunTimeout bounds each run. Default DefaultRunTimeout.
	RunTimeout time.Duration
	// BackoffCap bounds how far the schedule of a connection failing
	// again and again with one code is backed off. Default
	// DefaultBackoffCap.
	BackoffCap time.Duration
	// UISessionLifetime is how long a web console sign-in lasts. Default
	// DefaultUISessionLifetime.
	UISessionLifetime time.Duration
	// ShutdownTimeout bounds graceful shutdown. Default
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Environ returns the host environment connectors, the broker and the
	// enrollment gate see. Default os.Environ. (The KEK variable is read
	// from the process environment by package keysets, not from here.)
	Environ func() []string
	// LogOutput receives the log. Default os.Stderr.
	LogOutput io.Writer
	// PluginDescribeTimeout bounds each plugin's Describe when the plugin
	// dir is scanned (at start and at a rescan): a plugin that does not
	// answer in time is rejected (plugin_describe_timeout). Default
	// catalog.DefaultDescribeTimeout.
	PluginDescribeTimeout time.Duration
	// TLSCert and TLSKey are PEM files of the listener's certificate
	// (chain) and private key: both or neither. With them the HTTP API,
	// the gRPC admin service and /metrics are served over TLS only. The
	// key file must be 0600.
	TLSCert string
	TLSKey  string
	// OnListen is called once the listener is bound, before the host is
	// assembled (its /readyz answers 503 until then), with its address.
	OnListen func(addr string)
	// OnReady is called once the host is assembled and ready, with the
	// listener's address (useful with Listen "127.0.0.1:0").
	OnReady func(addr string)
}

// DefaultConfig returns a Config with every default set, including
// AllowHostEnvCredentials true (the CLI's default).
func DefaultConfig() Config {
	c := Config{AllowHostEnvCredentials: true}
	c.Defaults()
	return c
}

// Defaults fills the zero fields with their defaults.
func (c *Config) Defaults() {
	setDefault(&c.DataDir, DefaultDataDir)
	setDefault(&c.Listen, DefaultListen)
	setDefault(&c.PluginDir, DefaultPluginDir)
	setDefault(&c.LogFormat, DefaultLogFormat)
	setDefault(&c.LogLevel, DefaultLogLevel)
	setDefault(&c.KEKEnv, DefaultKEKEnv)
	if c.MaxConcurrentRuns == 0 {
		c.MaxConcurrentRuns = DefaultMaxConcurrentRuns
	}
	if c.RunTimeout == 0 {
		c.RunTimeout = DefaultRunTimeout
	}
	if c.BackoffCap == 0 {
		c.BackoffCap = DefaultBackoffCap
	}
	if c.UISessionLifetime == 0 {
		c.UISessionLifetime = DefaultUISessionLifetime
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.HostTTL == 0 {
		c.HostTTL = DefaultHostTTL
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = DefaultMaxClockSkew
	}
	if c.PluginDescribeTimeout == 0 {
		c.PluginDescribeTimeout = catalog.DefaultDescribeTimeout
	}
	if c.Environ == nil {
		c.Environ = os.Environ
	}
	if c.LogOutput == nil {
		c.LogOutput = os.Stderr
	}
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
// Call Defaults first.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.DataDir == "":
		return bad("data dir is empty")
	case c.PluginDir == "":
		return bad("plugin dir is empty")
	case c.LogFormat != "text" && c.LogFormat != "json":
		return bad("log format %q is not text or json", c.LogFormat)
	case hclog.LevelFromString(c.LogLevel) == hclog.NoLevel:
		return bad("log level %q is not trace, debug, info, warn, error or off", c.LogLevel)
	case c.KEKEnv == "" || strings.ContainsAny(c.KEKEnv, "=\x00"):
		return bad("KEK environment variable name %q is not valid", c.KEKEnv)
	case c.KEKFile != "" && c.KMSURI != "":
		return bad("both a KEK file and a KMS URI are set: choose one")
	case c.RunTimeout <= 0:
		return bad("run timeout must be positive")
	case c.BackoffCap < 0:
		return bad("backoff cap must not be negative")
	case c.UISessionLifetime < 0:
		return bad("console session lifetime must not be negative")
	case c.ShutdownTimeout <= 0:
		return bad("shutdown timeout must be positive")
	case c.MaxConcurrentRuns == 0:
		return bad("max concurrent runs must be positive")
	case c.HostTTL < 3*time.Second:
		return bad("host TTL must be at least 3s")
	case c.MaxClockSkew < 0:
		return bad("max clock skew must not be negative")
	case c.PluginDescribeTimeout < 0:
		return bad("plugin describe timeout must not be negative")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return bad("--tls-cert and --tls-key go together: give both (a certificate and its private key) or neither")
	case c.HostTTL < 2*c.MaxClockSkew:
		return bad("host TTL (%s) must be at least twice the max clock skew (%s)", c.HostTTL, c.MaxClockSkew)
	}
	if _, err := c.StoreLocation(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return bad("listen address %q is not host:port", c.Listen)
	}
	return nil
}

// StoreKind is a store backend.
type StoreKind string

// Store backends.
const (
	StoreSQLite   StoreKind = "sqlite"
	StorePostgres StoreKind = "postgres"
)

// StoreLocation is a parsed Config.Store.
type StoreLocation struct {
	Kind StoreKind
	// Path is the SQLite file (absolute or relative to the working dir).
	Path string
	// URL is the PostgreSQL connection URL (it may hold a password: never
	// log it; Redacted is the loggable form).
	URL string
	// Redacted names the store without credentials.
	Redacted string
}

// StoreLocation parses Store: "" is the SQLite file in the data dir,
// sqlite:///abs/path or sqlite://rel/path a SQLite file elsewhere, and
// postgres:// or postgresql:// a PostgreSQL database.
func (c *Config) StoreLocation() (StoreLocation, error) {
	raw := strings.TrimSpace(c.Store)
	switch {
	case raw == "":
		p := filepath.Join(c.DataDir, sqliteFileName)
		return StoreLocation{Kind: StoreSQLite, Path: p, Redacted: "sqlite://" + p}, nil
	case strings.HasPrefix(raw, "sqlite://"):
		p := strings.TrimPrefix(raw, "sqlite://")
		if p == "" || strings.HasSuffix(p, "/") {
			return StoreLocation{}, fmt.Errorf("%w: store %q names no SQLite file (want sqlite:///path/to/connhost.db)", ErrInvalidConfig, raw)
		}
		return StoreLocation{Kind: StoreSQLite, Path: p, Redacted: raw}, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		u, err := url.Parse(raw)
		if err != nil {
			return StoreLocation{}, fmt.Errorf("%w: store is not a valid postgres:// URL", ErrInvalidConfig)
		}
		return StoreLocation{Kind: StorePostgres, URL: raw, Redacted: u.Redacted()}, nil
	}
	scheme, _, _ := strings.Cut(raw, ":")
	if len(scheme) > 20 || strings.ContainsAny(scheme, "@/ ") {
		scheme = "(none)"
	}
	return StoreLocation{}, fmt.Errorf("%w: store scheme %q is not sqlite:// or postgres://", ErrInvalidConfig, scheme)
}

// KeysetPath is the keyset file: KeysetFile, or keyset.json in the data dir.
func (c *Config) KeysetPath() string {
	if c.KeysetFile != "" {
		return c.KeysetFile
	}
	return filepath.Join(c.DataDir, KeysetFile)
}

// TokenPath is the operator token file: TokenFile, or operator.token in
// the data dir.
func (c *Config) TokenPath() string {
	if c.TokenFile != "" {
		return c.TokenFile
	}
	return filepath.Join(c.DataDir, TokenFile)
}

// KEKSource returns the keyset's key-encryption key source: the KEK env
// variable when it is set non-empty in the process environment, else the
// KEK file, else the KMS URI; with none configured, the dev-mode cleartext
// keyset (keysets.Cleartext), which logs a loud warning on every start.
// Two configured sources are an error: picking one silently could strand
// the keyset encrypted under the other.
func (c *Config) KEKSource() (keysets.Source, error) {
	var srcs []keysets.Source
	name := c.KEKEnv
	if name == "" {
		name = DefaultKEKEnv
	}
	if v, ok := os.LookupEnv(name); ok && strings.TrimSpace(v) != "" {
		srcs = append(srcs, keysets.KEKFromEnv(name))
	}
	if c.KEKFile != "" {
		srcs = append(srcs, keysets.KEKFromFile(c.KEKFile))
	}
	if c.KMSURI != "" {
		srcs = append(srcs, keysets.KEKFromURI(c.KMSURI))
	}
	switch len(srcs) {
	case 0:
		return keysets.Cleartext(), nil
	case 1:
		return srcs[0], nil
	}
	kinds := make([]string, len(srcs))
	for i, s := range srcs {
		kinds[i] = s.String()
	}
	return nil, fmt.Errorf("%w: more than one KEK source is configured (%s): choose one", ErrInvalidConfig, strings.Join(kinds, ", "))
}

// Errors.
var (
	// ErrInvalidConfig is wrapped by Config.Validate and KEKSource errors.
	ErrInvalidConfig = errors.New("server: invalid config")
	// ErrInsecureFile reports a token file that group or others may
	// access.
	ErrInsecureFile = errors.New("server: file is accessible by group or others")
	// ErrNoToken reports a data dir without an operator token (the host
	// has never started there).
	ErrNoToken = errors.New("server: no operator token in the data dir")
	// ErrDataDirInUse reports a data dir another running host holds.
	ErrDataDirInUse = errors.New("server: the data dir is in use by another connhost serve")
)
