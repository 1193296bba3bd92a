package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/keysets"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
)

// keysetEncrypted is the output of keyset encrypt -o json.
type keysetEncrypted struct {
	Keyset       string              `json:"keyset"`
	KEKSource    string              `json:"kek_source"`
	KEKFile      string              `json:"kek_file,omitempty"`
	KEKGenerated bool                `json:"kek_generated"`
	Info         apitypes.KeysetInfo `json:"info"`
	Serve        string              `json:"serve"`
}

func (a *app) keysetEncryptCommand() *cobra.Command {
	var kekEnv, kekFile, kmsURI, keysetFile string
	cmd := &cobra.Command{
		Use:   "encrypt [--kek-env NAME | --kek-file FILE | --kms-uri URI]",
		Short: "Encrypt the dev-mode cleartext keyset under a KEK (local, host stopped)",
		Long: `Encrypt the cleartext keyset that "connhost serve" makes without a KEK (dev
mode) under a key-encryption key, in place: the file is replaced atomically,
mode 0600, and its keys are unchanged, so every stored credential still
decrypts. The KEK flags are serve's:

  --kek-env NAME   the base64 key in variable NAME (default CONNHOST_KEK,
                   used when it is set);
  --kek-file FILE  the KEK in FILE; a missing FILE is generated (mode 0600);
  --kms-uri URI    a KMS key: hcvault://HOST:PORT/MOUNT/keys/NAME, a
                   HashiCorp Vault transit key (VAULT_TOKEN must be set).

Refused, typed, without a KEK (kek_required) and for a keyset that is
encrypted already (keyset_encrypted). This command runs locally: stop the
host first (it is refused while a host serves the data dir), then start it
with the same KEK flag, which it prints. It never prints a KEK.`,
		Example: `  connhost keyset encrypt --data-dir ./var --kek-file /etc/connhost/kek
  connhost serve --data-dir ./var --kek-file /etc/connhost/kek
  CONNHOST_KEK=... connhost keyset encrypt --data-dir ./var`,
		Args: args(),
	}
	cmd.RunE = a.wrap(func(ctx context.Context, _ []string) error {
		dataDir := a.dataDirectory()
		out := keysetEncrypted{Keyset: keysetFile}
		if out.Keyset == "" {
			out.Keyset = filepath.Join(dataDir, server.KeysetFile)
		}
		// serve's sources, in serve's way: the variable when it is set,
		// the file, the KMS key; two of them are a mistake.
		srcs, err := a.kekSources(kekEnv, kekFile, kmsURI)
		if err != nil {
			return err
		}
		if len(srcs) == 0 {
			return newError(string(failure.KEKRequired), ExitError,
				"no KEK given: pass --kek-file FILE (generated if missing), --kms-uri URI, or set %s (--kek-env names another variable)", kekEnv)
		}
		src := srcs[0]
		generatedFile := false
		if src.Kind() == keysets.KEKKindFile {
			out.KEKFile = kekFile
		}
		out.Serve = serveLine(dataDir, keysetFile, kekEnv, kekFile, src)
		logger := hclog.New(&hclog.LoggerOptions{Name: "connhost", Output: a.rt.Stderr, Level: hclog.Warn})
		if _, err := os.Stat(out.Keyset); errors.Is(err, fs.ErrNotExist) {
			return newError(CodeKeysetNotFound, ExitError, "no keyset at %s: \"connhost keyset init\" creates an encrypted one", out.Keyset)
		}
		if out.KEKFile != "" {
			if _, err := os.Stat(out.KEKFile); errors.Is(err, fs.ErrNotExist) {
				if err := keysets.WriteKEKFile(out.KEKFile, keysets.GenerateKEK()); err != nil {
					return keysetErr(err)
				}
				generatedFile = true
			}
		}
		info, err := server.EncryptKeyset(ctx, dataDir, keysetFile, src, logger)
		if err != nil {
			if generatedFile {
				// The new KEK protects nothing; leave no stray key behind.
				_ = os.Remove(out.KEKFile)
			}
			switch {
			case errors.Is(err, keysets.ErrAlreadyEncrypted):
				return newError(string(failure.KeysetEncrypted), ExitError,
					"the keyset %s is encrypted already: start the host with the KEK it is under, or rotate with \"connhost keyset rotate\"", out.Keyset)
			case errors.Is(err, server.ErrDataDirInUse):
				return newError(CodeHostRunning, ExitError, "a host is serving %s: stop it, encrypt, then start it with the KEK (%s)", dataDir, out.Serve)
			}
			return keysetErr(err)
		}
		out.KEKSource = src.String()
		out.KEKGenerated = generatedFile
		out.Info = keysetInfo(info)
		if src.Kind() == keysets.KEKKindEnv {
			fmt.Fprintf(a.rt.Stderr, "warning: %s.\n", keysets.EnvAdvice)
		}
		if a.json() {
			out.Info.Keys = items(out.Info.Keys)
			return printJSON(a.rt.Stdout, out)
		}
		if err := fields(a.rt.Stdout, [][2]string{
			{"keyset", out.Keyset},
			{"encrypted", yesNo(info.Encrypted)},
			{"kek", out.KEKSource},
			{"kek generated", yesNo(out.KEKGenerated)},
			{"primary key id", itoa(info.PrimaryKeyID)},
			{"keys", itoa(len(info.Keys))},
			{"start the host with", out.Serve},
		}); err != nil {
			return err
		}
		a.warnKEKInDataDir(out.KEKFile, dataDir)
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&kekEnv, "kek-env", server.DefaultKEKEnv, "environment variable holding the base64 key-encryption key (used when set)")
	f.StringVar(&kekFile, "kek-file", "", "file holding the key-encryption key (generated, mode 0600, if missing)")
	f.StringVar(&kmsURI, "kms-uri", "", "KMS key URI of the key-encryption key")
	f.StringVar(&keysetFile, "keyset-file", "", "keyset file (default <data-dir>/keyset.json)")
	return cmd
}
