package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/connhost/connhost/host/version"
	"github.com/spf13/cobra"
)

// VersionInfo is the output of connhost version -o json.
type VersionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the connhost version",
		Long:    `Print the version of this connhost binary, and the Go toolchain and platform it was built for.`,
		Example: `  connhost version -o json`,
		Args:    args(),
		RunE: a.wrap(func(context.Context, []string) error {
			v := VersionInfo{Version: version.Version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
			if a.json() {
				return printJSON(a.rt.Stdout, v)
			}
			_, err := fmt.Fprintf(a.rt.Stdout, "connhost %s (%s %s/%s)\n", v.Version, v.Go, v.OS, v.Arch)
			return err
		}),
	}
}

// versionString is the binary's version.
func versionString() string { return version.Version }
