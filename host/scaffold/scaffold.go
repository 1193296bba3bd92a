// Package scaffold writes a new connector module, the starting point of a
// connector author (`connhost connector init`): a go.mod requiring the SDK
// module, a main that calls sdk.Serve, the manifest declared in Go beside a
// Run, a test with sdktest.Run and sdktest.Acceptance, a Makefile and a
// README. What it writes builds and passes its test as written, after
// `go mod tidy`.
//
// The SDK module is not published, so the go.mod replaces it with the sdk/
// directory of a connhost checkout: Options.SDKDir, which FindSDK locates
// from a directory inside or beside a checkout.
package scaffold

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// SDKModule is the module path of the connhost SDK.
const SDKModule = "github.com/connhost/connhost/sdk"

// hostModule is the module path of a connhost checkout's root.
const hostModule = "github.com/connhost/connhost"

// Errors Write and FindSDK return, wrapped with the detail.
var (
	// ErrInvalidName: the name is not a connector key.
	ErrInvalidName = errors.New("scaffold: invalid connector name")
	// ErrInvalidModule: the module path is not one go.mod accepts.
	ErrInvalidModule = errors.New("scaffold: invalid module path")
	// ErrDirNotEmpty: the target exists and is not an empty directory.
	ErrDirNotEmpty = errors.New("scaffold: target directory is not empty")
	// ErrSDKNotFound: the SDK directory does not hold the SDK module.
	ErrSDKNotFound = errors.New("scaffold: connhost SDK module not found")
)

// nameRE is the manifest's connector key rule (manifest.Validate).
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{1,62}$`)

// moduleRE is a conservative module path: dot-or-slash separated elements
// of letters, digits and -._~, as `go mod init` accepts for a new module.
var moduleRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]*(/[A-Za-z0-9._~-]+)*$`)

// Options says what to write.
type Options struct {
	// Name is the connector key, ^[a-z][a-z0-9_-]{1,62}$: the manifest's
	// ConnectorKey and the plugin binary's name.
	Name string
	// Dir is the directory to write; it must not exist or be empty.
	Dir string
	// Module is the new module's path; "" means "example.com/" + Name.
	Module string
	// SDKDir is the directory of the SDK module (a checkout's sdk/),
	// written to go.mod as a replace directive, made absolute.
	SDKDir string
	// PluginDir is where the Makefile's build puts the plugin; "" means
	// DefaultPluginDir(SDKDir).
	PluginDir string
}

// Validate checks the name and the module path.
func (o Options) Validate() error {
	if !nameRE.MatchString(o.Name) {
		return fmt.Errorf("%w %q: a connector key is a lower-case letter, then 1 to 62 of a-z, 0-9, '_' or '-'", ErrInvalidName, o.Name)
	}
	if o.Module != "" && (!moduleRE.MatchString(o.Module) || strings.Contains(o.Module, "..")) {
		return fmt.Errorf("%w %q", ErrInvalidModule, o.Module)
	}
	if o.Dir == "" {
		return errors.New("scaffold: no target directory")
	}
	return nil
}

// files are the templates, each with the name it is written under.
var files = []struct{ tmpl, name string }{
	{"go.mod.tmpl", "go.mod"},
	{"main.go.tmpl", "main.go"},
	{"connector.go.tmpl", "connector.go"},
	{"connector_test.go.tmpl", "connector_test.go"},
	{"Makefile.tmpl", "Makefile"},
	{"README.md.tmpl", "README.md"},
	{"gitignore.tmpl", ".gitignore"},
}

//go:embed templates/*.tmpl
var templateFS embed.FS

// The templates use [[ ]] as delimiters: Go composite literals hold {{.
var templates = template.Must(template.New("").Delims("[[", "]]").ParseFS(templateFS, "templates/*.tmpl"))

// data is what the templates see.
type data struct {
	Name, TokenEnv, Module, GoVersion string
	SDKModule, SDKPath, PluginDir     string
}

// Write writes the connector module o describes into o.Dir, creating it,
// and returns the names of the files it wrote. It writes nothing when o is
// invalid, o.Dir is not empty or o.SDKDir does not hold the SDK.
func Write(o Options) ([]string, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	sdkDir, goVersion, err := checkSDK(o.SDKDir)
	if err != nil {
		return nil, err
	}
	if o.Module == "" {
		o.Module = "example.com/" + o.Name
	}
	if o.PluginDir == "" {
		o.PluginDir = DefaultPluginDir(sdkDir)
	}
	d := data{
		Name:      o.Name,
		TokenEnv:  strings.ToUpper(strings.ReplaceAll(o.Name, "-", "_")) + "_TOKEN",
		Module:    o.Module,
		GoVersion: goVersion,
		SDKModule: SDKModule,
		SDKPath:   modPath(sdkDir),
		PluginDir: o.PluginDir,
	}
	rendered := make([][]byte, len(files))
	for i, f := range files {
		var b bytes.Buffer
		if err := templates.ExecuteTemplate(&b, f.tmpl, d); err != nil {
			return nil, fmt.Errorf("scaffold: %s: %w", f.name, err)
		}
		rendered[i] = b.Bytes()
		if strings.HasSuffix(f.name, ".go") {
			if rendered[i], err = format.Source(rendered[i]); err != nil {
				return nil, fmt.Errorf("scaffold: %s: %w", f.name, err)
			}
		}
	}
	if err := emptyDir(o.Dir); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for i, f := range files {
		if err := os.WriteFile(filepath.Join(o.Dir, f.name), rendered[i], 0o644); err != nil {
			return nil, fmt.Errorf("scaffold: %w", err)
		}
		names = append(names, f.name)
	}
	return names, nil
}

// emptyDir makes dir exist and be empty: it creates it (with its parents)
// when missing and refuses one that holds anything.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("scaffold: %w", err)
		}
		return nil
	case err != nil:
		if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
			return fmt.Errorf("%w: %s is a file", ErrDirNotEmpty, dir)
		}
		return fmt.Errorf("scaffold: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("%w: %s holds %d entries", ErrDirNotEmpty, dir, len(entries))
	}
	return nil
}

// checkSDK returns the absolute SDK directory and the go version its
// go.mod declares, or ErrSDKNotFound.
func checkSDK(dir string) (abs, goVersion string, err error) {
	if dir == "" {
		return "", "", fmt.Errorf("%w: no SDK directory given", ErrSDKNotFound)
	}
	abs, err = filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrSDKNotFound, err)
	}
	module, goVersion, err := readGoMod(filepath.Join(abs, "go.mod"))
	if err != nil {
		return "", "", fmt.Errorf("%w in %s: %v", ErrSDKNotFound, abs, err)
	}
	if module != SDKModule {
		return "", "", fmt.Errorf("%w in %s: its go.mod is module %q, not %s", ErrSDKNotFound, abs, module, SDKModule)
	}
	if goVersion == "" {
		return "", "", fmt.Errorf("%w in %s: its go.mod has no go directive", ErrSDKNotFound, abs)
	}
	return abs, goVersion, nil
}

// readGoMod returns the module path and go version a go.mod declares.
func readGoMod(path string) (module, goVersion string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "module":
			if module, err = unquote(f[1]); err != nil {
				return "", "", err
			}
		case "go":
			goVersion = f[1]
		}
	}
	return module, goVersion, sc.Err()
}

func unquote(s string) (string, error) {
	if strings.HasPrefix(s, `"`) {
		return strconv.Unquote(s)
	}
	return s, nil
}

// modPath writes a directory as a go.mod path, quoted when it holds a
// character go.mod does not take bare.
func modPath(dir string) string {
	if strings.ContainsAny(dir, " \t\"'`\\(),") {
		return strconv.Quote(dir)
	}
	return dir
}

// FindSDK locates the SDK module from dir: in dir or an ancestor, a
// directory whose go.mod is the SDK module, or whose sdk/go.mod is (a
// connhost checkout, or a directory beside one named connhost). It returns
// ErrSDKNotFound when there is none.
func FindSDK(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrSDKNotFound, err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		for _, c := range []string{d, filepath.Join(d, "sdk"), filepath.Join(d, "connhost", "sdk")} {
			if m, _, err := readGoMod(filepath.Join(c, "go.mod")); err == nil && m == SDKModule {
				return c, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w from %s: pass the sdk/ directory of a connhost checkout", ErrSDKNotFound, abs)
		}
	}
}

// DefaultPluginDir is where a new connector's Makefile builds its plugin:
// the bin/plugins of the connhost checkout holding sdkDir (what its
// `make run` serves), or bin/plugins in the connector's own directory when
// sdkDir is not in a checkout.
func DefaultPluginDir(sdkDir string) string {
	root := filepath.Dir(sdkDir)
	if m, _, err := readGoMod(filepath.Join(root, "go.mod")); err == nil && m == hostModule {
		return filepath.Join(root, "bin", "plugins")
	}
	return filepath.Join("bin", "plugins")
}
