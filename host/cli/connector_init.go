package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/connhost/connhost/host/scaffold"
	"github.com/spf13/cobra"
)

// connectorInit is the output of connector init -o json.
type connectorInit struct {
	Name      string   `json:"name"`
	Dir       string   `json:"dir"`
	Module    string   `json:"module"`
	SDK       string   `json:"sdk"`
	PluginDir string   `json:"plugin_dir"`
	Files     []string `json:"files"`
	Next      []string `json:"next"`
}

func (a *app) connectorInitCommand() *cobra.Command {
	var dir, module, sdkDir string
	cmd := &cobra.Command{
		Use:   "init NAME [--dir DIR] [--module PATH] [--sdk DIR]",
		Short: "Write a new connector module (local; no host needed)",
		Long: `Write a new connector module to start from: go.mod, main.go calling
sdk.Serve, connector.go with the manifest declared in Go and a Run,
connector_test.go with an in-process test and sdktest.Acceptance on the built
plugin, a Makefile and a README. It builds and passes its test as written:

  cd DIR && go mod tidy && go test ./... && make build

NAME is the connector key (^[a-z][a-z0-9_-]{1,62}$) and the plugin's name.

  --dir DIR      where to write (default ./NAME); it must not exist or be empty
  --module PATH  the Go module path (default example.com/NAME)
  --sdk DIR      the connhost SDK module: the sdk/ directory of a connhost
                 checkout. The SDK is not published, so go.mod replaces it
                 with this directory (made absolute). Default: found from DIR,
                 the working directory, then this binary's directory, looking
                 in each and its parents for sdk/ (a checkout) or connhost/sdk.

The Makefile builds the plugin into the checkout's bin/plugins, the plugin
directory "make run" serves (override with make build PLUGIN_DIR=DIR); when
the SDK is not in a checkout, into bin/plugins in DIR.`,
		Example: `  connhost connector init tickets
  connhost connector init tickets --dir ~/src/tickets --module example.org/tickets --sdk ~/src/connhost/sdk`,
		Args: args("NAME"),
		RunE: a.wrap(func(_ context.Context, args []string) error {
			name := args[0]
			if dir == "" {
				dir = name
			}
			o := scaffold.Options{Name: name, Dir: dir, Module: module, SDKDir: sdkDir}
			if err := o.Validate(); err != nil {
				return initError(err, name)
			}
			if o.SDKDir == "" {
				found, err := findSDK(dir)
				if err != nil {
					return initError(err, name)
				}
				o.SDKDir = found
			}
			files, err := scaffold.Write(o)
			if err != nil {
				return initError(err, name)
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				abs = dir
			}
			sdkAbs, _ := filepath.Abs(o.SDKDir)
			out := connectorInit{
				Name: name, Dir: abs, Module: module, SDK: sdkAbs,
				PluginDir: scaffold.DefaultPluginDir(sdkAbs), Files: files,
				Next: []string{"cd " + abs, "go mod tidy", "go test ./...", "make build"},
			}
			if out.Module == "" {
				out.Module = "example.com/" + name
			}
			if a.json() {
				return printJSON(a.rt.Stdout, out)
			}
			fmt.Fprintf(a.rt.Stdout, "wrote connector %s in %s: %s\n", name, abs, strings.Join(files, " "))
			fmt.Fprintf(a.rt.Stdout, "sdk: %s (a replace in go.mod)\n", sdkAbs)
			fmt.Fprintf(a.rt.Stdout, "next:\n  %s\nmake build writes %s; then `connhost connector rescan` (or SIGHUP to the host) catalogues it.\n",
				strings.Join(out.Next, "\n  "), filepath.Join(out.PluginDir, name))
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory to write (default ./NAME)")
	f.StringVar(&module, "module", "", "Go module path (default example.com/NAME)")
	f.StringVar(&sdkDir, "sdk", "", "the connhost SDK module directory (default: found from --dir, the working directory, then this binary)")
	return cmd
}

// findSDK looks for the SDK from the target directory, the working
// directory, then the directory of this binary (bin/ of a checkout).
func findSDK(dir string) (string, error) {
	starts := []string{dir}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	var first error
	for _, s := range starts {
		found, err := scaffold.FindSDK(s)
		if err == nil {
			return found, nil
		}
		if first == nil {
			first = err
		}
	}
	return "", first
}

// initError reports a scaffold error as invalid input (exit 2), without
// echoing a NAME that does not look like one.
func initError(err error, name string) error {
	switch {
	case errors.Is(err, scaffold.ErrInvalidName):
		return newError(CodeInvalidInput, ExitUsage,
			"NAME %s is not a connector key: a lower-case letter, then 1 to 62 of a-z, 0-9, '_' or '-'", shown(name))
	case errors.Is(err, scaffold.ErrInvalidModule), errors.Is(err, scaffold.ErrDirNotEmpty):
		return newError(CodeInvalidInput, ExitUsage, "%v", err)
	case errors.Is(err, scaffold.ErrSDKNotFound):
		return newError(CodeInvalidInput, ExitUsage, "%v (--sdk DIR)", err)
	default:
		return err
	}
}
