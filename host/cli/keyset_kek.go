package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/keysets"
)

// kekSources resolves the KEK flags as serve does: the --kek-env variable
// (default CONNHOST_KEK) when it is set, --kek-file, --kms-uri. More than
// one is refused: serve would refuse the same combination.
func (a *app) kekSources(kekEnv, kekFile, kmsURI string) ([]keysets.Source, error) {
	if kekEnv == "" || strings.ContainsAny(kekEnv, "=\x00") {
		return nil, usageErrorf("--kek-env %q is not a variable name", kekEnv)
	}
	var srcs []keysets.Source
	if v, ok := a.rt.LookupEnv(kekEnv); ok && strings.TrimSpace(v) != "" {
		srcs = append(srcs, keysets.KEKFromEnv(kekEnv))
	}
	if kekFile != "" {
		srcs = append(srcs, keysets.KEKFromFile(kekFile))
	}
	if kmsURI != "" {
		srcs = append(srcs, keysets.KEKFromURI(kmsURI))
	}
	if len(srcs) > 1 {
		kinds := make([]string, len(srcs))
		for i, s := range srcs {
			kinds[i] = s.String()
		}
		hint := ""
		if srcs[0].Kind() == keysets.KEKKindEnv {
			hint = fmt.Sprintf(" (%s is set in the environment: unset it to use the other)", kekEnv)
		}
		return nil, usageErrorf("more than one KEK source is given (%s): choose one%s", strings.Join(kinds, ", "), hint)
	}
	return srcs, nil
}

// serveLine is the serve command that starts the host on what a keyset
// command made, as it can be typed: an env KEK is read from the variable
// the operator set (named only when it is not serve's default).
func serveLine(dataDir, keysetFile, kekEnv, kekFile string, src keysets.Source) string {
	line := "connhost serve --data-dir " + dataDir
	switch src.Kind() {
	case keysets.KEKKindEnv:
		if kekEnv != server.DefaultKEKEnv {
			line += " --kek-env " + kekEnv
		}
	case keysets.KEKKindFile:
		line += " --kek-file " + kekFile
	default:
		line += " --kms-uri URI"
	}
	if keysetFile != "" {
		line += " --keyset-file " + keysetFile
	}
	return line
}

// keysetErr types a local keyset command's failure.
func keysetErr(err error) error {
	switch {
	case errors.Is(err, keysets.ErrExists):
		return newError(CodeKeysetExists, ExitError, "%s", sentence(err))
	case errors.Is(err, keysets.ErrBadKEK):
		return newError(CodeKEKUnusable, ExitError, "%s", sentence(err))
	case errors.Is(err, keysets.ErrInsecurePermissions):
		return newError(CodeInsecureFile, ExitError, "%s", sentence(err))
	}
	return newError(CodeLocal, ExitError, "%s", sentence(err))
}

// warnKEKInDataDir warns when the KEK file sits in the data dir it
// protects: a copy of the dir would then decrypt its own keyset.
func (a *app) warnKEKInDataDir(kekFile, dataDir string) {
	if kekFile != "" && strings.HasPrefix(filepath.Clean(kekFile), filepath.Clean(dataDir)+string(filepath.Separator)) {
		fmt.Fprintf(a.rt.Stderr, "warning: the KEK file is inside the data dir: anyone with a copy of the data dir can decrypt the keyset. Move it elsewhere (and pass its new path to --kek-file), or use --kek-env or --kms-uri.\n")
	}
}
