package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/connhost/connhost/host/version"
	"github.com/spf13/cobra"
)

// versionTimeout bounds the server part of connhost version.
const versionTimeout = 5 * time.Second

// VersionInfo is the output of connhost version -o json: this binary's
// build (the members of version.Info, at the top level) and the server's.
type VersionInfo struct {
	version.Info
	// Server is the build of the host at ServerAddr (GET /v1/version), or
	// null when it could not be read; ServerError then says why.
	Server      *version.Info  `json:"server"`
	ServerAddr  string         `json:"server_addr"`
	ServerError *JSONErrorBody `json:"server_error,omitempty"`
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and build of connhost and of the host it talks to",
		Long: `Print the version and build of this connhost binary (release version, commit
when the build recorded it, Go toolchain, platform) and of the host at --addr
(GET /v1/version, with the operator token).

When the host cannot be reached or refuses the token, the client part is
still printed and the server part says why; the exit status is 0 all the
same, because the client's version, which needs no host, was printed. With
-o json the reason is in "server_error" and "server" is null.`,
		Example: `  connhost version
  connhost version -o json | jq -r .server.version`,
		Args: args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			v := VersionInfo{Info: version.Get(), ServerAddr: a.setting("addr", EnvAddr)}
			if srv, err := a.serverVersion(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				body := a.classify(err).jsonBody().Error
				body.ExitStatus = 0 // version still succeeds
				v.ServerError = &body
			} else {
				v.Server = &srv
			}
			if a.json() {
				return printJSON(a.rt.Stdout, v)
			}
			fmt.Fprintf(a.rt.Stdout, "client: %s\n", buildLine(v.Info))
			if v.Server != nil {
				_, err := fmt.Fprintf(a.rt.Stdout, "server: %s at %s\n", buildLine(*v.Server), v.ServerAddr)
				return err
			}
			_, err := fmt.Fprintf(a.rt.Stdout, "server: not available: %s: %s\n", v.ServerError.Code, v.ServerError.Message)
			return err
		}),
	}
}

func (a *app) serverVersion(ctx context.Context) (version.Info, error) {
	c, err := a.api()
	if err != nil {
		return version.Info{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	return c.Version(ctx)
}

// buildLine is one build on one line:
// "connhost v1.2.0 (commit 1a2b3c4d5e6f, modified; go1.26.0 linux/amd64)".
func buildLine(v version.Info) string {
	var parts []string
	if v.Commit != "" {
		c := "commit " + shortCommit(v.Commit)
		if v.Modified {
			c += ", modified"
		}
		parts = append(parts, c)
	}
	parts = append(parts, fmt.Sprintf("%s %s/%s", v.Go, v.OS, v.Arch))
	return fmt.Sprintf("connhost %s (%s)", cell(v.Version), cell(strings.Join(parts, "; ")))
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// versionString is the binary's version.
func versionString() string { return version.Version }
