package cli

import (
	"context"
	"errors"
	"fmt"

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
connectors found in --plugin-dir.

The data dir holds the SQLite store, the keyset and the operator token
(created on first start, mode 0600; the other commands read it from there).
The keyset's key-encryption key comes from the --kek-env variable when it is
set, else --kek-file, else --kms-uri (hcvault://HOST:PORT/MOUNT/keys/NAME, a
HashiCorp Vault transit key, with VAULT_TOKEN set); with none, a cleartext
dev keyset is used and a warning is logged at every start (see "connhost
keyset init").

SIGINT or SIGTERM starts a graceful shutdown: running connectors are
stopped, runs are finished and leases released, within --shutdown-timeout.
A second signal exits at once.`,
		Example: `  connhost serve
  connhost serve --data-dir /var/lib/connhost --plugin-dir /usr/lib/connhost/plugins --kek-file /etc/connhost/kek
  CONNHOST_KEK=... connhost serve --listen 127.0.0.1:7480 --log-format json`,
		Args: args(),
	}
	cmd.RunE = a.wrap(func(ctx context.Context, _ []string) error {
		cfg.DataDir = a.dataDirectory()
		cfg.Environ = a.rt.Environ
		cfg.LogOutput = a.rt.Stderr
		cfg.OnReady = func(addr string) {
			fmt.Fprintf(a.rt.Stdout, "connhost %s serving on http://%s (data dir %s)\n", versionString(), addr, cfg.DataDir)
		}
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			return usageErrorf("%v", err)
		}
		err := a.rt.Serve(ctx, cfg)
		switch {
		case err == nil, errors.Is(err, context.Canceled) && ctx.Err() != nil:
			return nil
		case errors.Is(err, server.ErrInvalidConfig):
			return usageErrorf("%v", err)
		default:
			return newError(CodeServe, ExitError, "%v", err)
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
	f.UintVar(&cfg.MaxConcurrentRuns, "max-concurrent-runs", server.DefaultMaxConcurrentRuns, "limit of concurrent scheduled runs")
	f.DurationVar(&cfg.RunTimeout, "run-timeout", server.DefaultRunTimeout, "deadline of each run")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "bound of the graceful shutdown")
	return cmd
}
