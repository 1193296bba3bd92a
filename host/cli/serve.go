package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/server"
	"github.com/spf13/cobra"
)

func (a *app) serveCommand() *cobra.Command {
	var cfg server.Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the host: HTTP and gRPC API, scheduler and connector plugins",
		Long: `Run the connector host in the foreground: the HTTP API under /v1 and the gRPC
admin service on one listener (loopback by default), the scheduler, and the
connectors found in --plugin-dir. The listener is bound first (a busy
address refuses the start before anything is created); /readyz answers 503
until the store is open and every plugin is described (each within
--plugin-describe-timeout, concurrently). A --plugin-dir that does not exist
or cannot be read refuses the start; an empty one serves with a warning.
--tls-cert and --tls-key serve the HTTP API, gRPC and /metrics over TLS
(clients: https:// in --addr, and --ca-file for a private CA).

The data dir holds the SQLite store, the keyset and the operator token
(created on first start, mode 0600; the other commands read it from there).
--store (or CONNHOST_STORE) puts the store elsewhere: sqlite:///path/to/file,
or postgres://… for a store several hosts share. Hosts on one PostgreSQL
store share the work: every scheduled occurrence runs once across them, a
host that stops heartbeating for --host-ttl has its runs failed
(host_crashed) and its work taken back by the others, and manual triggers,
cancels, pauses and schedule changes take effect on every host within a
second. Point them at one keyset (--keyset-file, under one --kek-file) and
one operator token (--token-file); each keeps its own --data-dir.

--max-concurrent-runs is this host's worker pool: the most runs it has at
once, of every trigger. Due work beyond it waits in the store's queue
(manual triggers first); a schedule tick for a connection whose previous
occurrence is still queued or running is coalesced and counted.
The keyset's key-encryption key comes from the --kek-env variable when it is
set, else --kek-file, else --kms-uri (hcvault://HOST:PORT/MOUNT/keys/NAME, a
HashiCorp Vault transit key, with VAULT_TOKEN set); with none, a cleartext
dev keyset is used and a warning is logged at every start (see "connhost
keyset init").

SIGINT or SIGTERM starts a graceful shutdown: running connectors are
stopped (their runs end cancelled with host_shutdown and are queued again
as retries, for another host or this host's next start), queued work is
handed back, leases are released, within --shutdown-timeout. A second
signal exits at once. SIGHUP re-scans --plugin-dir (as "connhost connector
rescan" does): new and rebuilt connectors are registered, runs in flight
keep their binary.`,
		Example: `  connhost serve
  connhost serve --data-dir /var/lib/connhost --plugin-dir /usr/lib/connhost/plugins --kek-file /etc/connhost/kek
  CONNHOST_KEK=... connhost serve --listen 127.0.0.1:7480 --log-format json
  connhost serve --store postgres://connhost@db:5432/connhost --data-dir /var/lib/connhost \
      --kek-file /etc/connhost/kek --keyset-file /etc/connhost/keyset.json --token-file /etc/connhost/operator.token`,
		Args: args(),
	}
	cmd.RunE = a.wrap(func(ctx context.Context, _ []string) error {
		cfg.DataDir = a.dataDirectory()
		if !cmd.Flags().Changed("store") {
			cfg.Store, _ = a.rt.LookupEnv(server.StoreEnv)
		}
		if cmd.Flags().Changed("max-concurrent-runs") && cfg.MaxConcurrentRuns == 0 {
			return usageErrorf("--max-concurrent-runs must be at least 1")
		}
		if cfg.UISessionLifetime <= 0 {
			return usageErrorf("--ui-session-lifetime must be positive")
		}
		if cfg.BackoffCap <= 0 {
			// Zero would read as "no backoff" and mean the default.
			return usageErrorf("--backoff-cap must be positive (it bounds how long a connection that keeps failing waits; there is no off switch)")
		}
		cfg.Environ = a.rt.Environ
		cfg.LogOutput = a.rt.Stderr
		cfg.OnReady = func(addr string) {
			scheme := "http"
			if cfg.TLSCert != "" {
				scheme = "https"
			}
			fmt.Fprintf(a.rt.Stdout, "connhost %s serving on %s://%s (data dir %s)\n", versionString(), scheme, addr, cfg.DataDir)
			fmt.Fprintf(a.rt.Stdout, "web console at %s://%s/ui/: `connhost ui` prints a one-time sign-in link\n", scheme, addr)
		}
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			return usageErrorf("%s", sentence(err))
		}
		err := a.rt.Serve(ctx, cfg)
		switch {
		case err == nil, errors.Is(err, context.Canceled) && ctx.Err() != nil:
			return nil
		case errors.Is(err, server.ErrInvalidConfig):
			return usageErrorf("%s", sentence(err))
		default:
			// The one report of a refused start (the host does not log
			// it as well).
			return newError(CodeServe, ExitError, "%s", sentence(err))
		}
	})
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", server.DefaultListen, "address of the HTTP and gRPC listener")
	f.StringVar(&cfg.PluginDir, "plugin-dir", server.DefaultPluginDir, "directory of connector plugin binaries")
	f.StringVar(&cfg.LogFormat, "log-format", server.DefaultLogFormat, "log format: text or json")
	f.StringVar(&cfg.LogLevel, "log-level", server.DefaultLogLevel, "log level: trace, debug, info, warn, error")
	f.StringVar(&cfg.KEKEnv, "kek-env", server.DefaultKEKEnv, "environment variable holding the base64 key-encryption key (used when set)")
	f.StringVar(&cfg.KEKFile, "kek-file", "", "file holding the base64 key-encryption key (mode 0600)")
	f.StringVar(&cfg.KMSURI, "kms-uri", "", "KMS key URI of the key-encryption key")
	f.BoolVar(&cfg.AllowHostEnvCredentials, "allow-host-env-credentials", true,
		"let connections that never stored a credential use the connector's variables from the host environment")
	f.UintVar(&cfg.MaxConcurrentRuns, "max-concurrent-runs", server.DefaultMaxConcurrentRuns,
		"this host's worker pool: the most runs at once, scheduled, retry and manual alike")
	f.StringVar(&cfg.Store, "store", "", "store URL: sqlite:///path or postgres://… (default: SQLite in the data dir; env "+server.StoreEnv+")")
	f.StringVar(&cfg.KeysetFile, "keyset-file", "", "keyset file (default <data-dir>/keyset.json)")
	f.StringVar(&cfg.TokenFile, "token-file", "", "operator token file (default <data-dir>/operator.token)")
	f.DurationVar(&cfg.HostTTL, "host-ttl", server.DefaultHostTTL, "how long a host may miss heartbeats before the others take its work back")
	f.DurationVar(&cfg.MaxClockSkew, "max-clock-skew", server.DefaultMaxClockSkew, "the largest clock difference between hosts the cluster tolerates")
	f.DurationVar(&cfg.ClockOffset, "clock-offset", 0, "shift this host's clock (for clock-skew tests only)")
	_ = f.MarkHidden("clock-offset")
	f.BoolVar(&cfg.NewStore, "new-store", false,
		"start an empty store on purpose in a data dir whose store was lost (otherwise such a start is refused)")
	f.BoolVar(&cfg.NewKeyset, "new-keyset", false,
		"create a new keyset on purpose although stored credentials are sealed under a missing one (they stay undecryptable)")
	f.DurationVar(&cfg.RunTimeout, "run-timeout", server.DefaultRunTimeout, "deadline of each run")
	f.DurationVar(&cfg.BackoffCap, "backoff-cap", server.DefaultBackoffCap,
		"the longest a connection failing again and again with one code is backed off (from its 3rd failure in a row; positive)")
	f.DurationVar(&cfg.UISessionLifetime, "ui-session-lifetime", server.DefaultUISessionLifetime,
		"how long a web console sign-in lasts (positive; sign-out ends it sooner)")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "bound of the graceful shutdown")
	f.DurationVar(&cfg.PluginDescribeTimeout, "plugin-describe-timeout", catalog.DefaultDescribeTimeout,
		"deadline of each plugin's Describe when the plugin dir is scanned; a plugin that misses it is rejected")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) of the listener: HTTP API, gRPC and metrics over TLS (with --tls-key)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert (mode 0600)")
	return cmd
}
