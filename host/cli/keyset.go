package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/keysets"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
)

// DefaultKEKFile is the name, in the data dir, of the KEK file keyset init
// generates when no KEK source is given.
const DefaultKEKFile = server.DefaultKEKFile

func (a *app) keysetCommand() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "keyset",
		Short: "Create, rotate, rewrap and inspect the credential keyset",
		Long: `Stored credentials are encrypted with a Tink AEAD (AES-256-GCM) keyset, itself
encrypted under a key-encryption key (KEK): a base64 key in an environment
variable, a KEK file, or a KMS key.

"keyset init" runs locally, before the first "serve"; "keyset encrypt" runs
locally too, with the host stopped, and turns the dev-mode cleartext keyset
into one encrypted under a KEK. rotate, rewrap, disable, enable and info talk
to the running host. Rotation workflow: rotate (a new primary key; old keys
still decrypt), then rewrap (re-encrypt every credential under the new
primary), then disable the old key (refused while a credential still needs
it). No command prints key material; init prints a KEK it generated only with
--print-kek.`,
		Example: `  connhost keyset init --data-dir ./var
  connhost keyset rotate && connhost keyset rewrap
  connhost keyset disable OLD_KEY_ID
  connhost keyset encrypt --data-dir ./var --kek-file /etc/connhost/kek
  connhost keyset info -o json`,
	})
	cmd.AddCommand(a.keysetInitCommand(),
		a.keysetAPICommand("info", "Show the keyset's keys and KEK kind", `Show the running host's keyset: key ids, statuses, primary key and KEK kind. Never key material.`),
		a.keysetAPICommand("rotate", "Add a new primary key", `Add a new primary key to the running host's keyset. Old keys keep decrypting; new credentials use the new key. Follow with "keyset rewrap".`),
		a.keysetRewrapCommand(),
		a.keysetKeyCommand(false),
		a.keysetKeyCommand(true),
		a.keysetEncryptCommand(),
	)
	return cmd
}

// keysetInit is the output of keyset init -o json.
type keysetInit struct {
	Keyset       string              `json:"keyset"`
	KEKSource    string              `json:"kek_source"`
	KEKFile      string              `json:"kek_file,omitempty"`
	KEKGenerated bool                `json:"kek_generated"`
	KEK          string              `json:"kek,omitempty"` // only with --print-kek
	Info         apitypes.KeysetInfo `json:"info"`
	Serve        string              `json:"serve"`
}

func (a *app) keysetInitCommand() *cobra.Command {
	var kekEnv, kekFile, kmsURI string
	var printKEK bool
	cmd := &cobra.Command{
		Use:   "init [--kek-env NAME | --kek-file FILE | --kms-uri URI]",
		Short: "Create the encrypted keyset in the data dir (local, before the first serve)",
		Long: `Create the keyset that encrypts stored credentials, in the data dir, encrypted
under a key-encryption key (KEK):

  --kek-env NAME   the KEK is the base64 key in variable NAME (default
                   CONNHOST_KEK, used when it is set, as serve does; with
                   --kek-env NAME --print-kek and NAME unset, a new KEK is
                   generated and printed once);
  --kek-file FILE  the KEK is in FILE; a missing FILE is generated (mode 0600);
  --kms-uri URI    the KEK is a KMS key: hcvault://HOST:PORT/MOUNT/keys/NAME,
                   a HashiCorp Vault transit key (VAULT_TOKEN must be set);
  (none)           a KEK file is generated in the data dir (keyset.kek).

The sources are resolved exactly as serve resolves them: more than one (for
example CONNHOST_KEK exported and --kek-file) is refused, so the serve
command it prints starts the host as printed.

This command runs locally and does not need a running host. It prints where
the keyset and the KEK are and the serve flags to use. It never prints a KEK
unless --print-kek is given, and then only one it generated.`,
		Example: `  connhost keyset init --data-dir ./var
  connhost keyset init --data-dir /var/lib/connhost --kek-file /etc/connhost/kek
  connhost keyset init --kek-env CONNHOST_KEK --print-kek
  VAULT_TOKEN=… connhost keyset init --kms-uri hcvault://vault.example.com:8200/transit/keys/connhost`,
		Args: args(),
	}
	cmd.RunE = a.wrap(func(ctx context.Context, _ []string) error {
		dataDir := a.dataDirectory()
		out := keysetInit{Keyset: filepath.Join(dataDir, server.KeysetFile)}
		if _, err := os.Stat(out.Keyset); err == nil {
			return newError(CodeKeysetExists, ExitError, "a keyset already exists at %s: rotate it with \"connhost keyset rotate\"", out.Keyset)
		}
		// serve's sources, in serve's way, so the printed serve line
		// starts the host: the variable when it is set, the file, the KMS
		// key; two of them are refused.
		srcs, err := a.kekSources(kekEnv, kekFile, kmsURI)
		if err != nil {
			return err
		}
		var (
			src       keysets.Source
			generated string // a KEK this command made, to print or undo
		)
		switch {
		case len(srcs) == 1:
			src = srcs[0]
		case cmd.Flags().Changed("kek-env"):
			if !printKEK {
				return usageErrorf("%s is not set: set it to the base64 of 32 random bytes, or add --print-kek to generate one", kekEnv)
			}
			generated = keysets.GenerateKEK()
			// keysets reads the variable from the process environment;
			// set it for this process only, for InitKeyset below.
			if err := os.Setenv(kekEnv, generated); err != nil {
				return newError(CodeLocal, ExitError, "set %s: %v", kekEnv, err)
			}
			src = keysets.KEKFromEnv(kekEnv)
		default:
			kekFile = filepath.Join(dataDir, DefaultKEKFile)
			src = keysets.KEKFromFile(kekFile)
		}
		if src.Kind() == keysets.KEKKindFile {
			if _, err := os.Stat(kekFile); errors.Is(err, fs.ErrNotExist) {
				generated = keysets.GenerateKEK()
				if err := keysets.WriteKEKFile(kekFile, generated); err != nil {
					return keysetErr(err)
				}
				out.KEKGenerated = true
			}
			out.KEKFile = kekFile
		}
		serveFlag := serveLine(dataDir, "", kekEnv, kekFile, src)
		if src.Kind() == keysets.KEKKindEnv && generated != "" {
			// The variable is set in this process only.
			serveFlag = kekEnv + "=<the kek value printed here> " + serveFlag
		}
		if generated != "" {
			out.KEKGenerated = true
		}
		logger := hclog.New(&hclog.LoggerOptions{Name: "connhost", Output: a.rt.Stderr, Level: hclog.Warn})
		info, err := a.rt.InitKeyset(ctx, dataDir, src, logger)
		if err != nil {
			if out.KEKFile != "" && out.KEKGenerated {
				// The new KEK protects nothing; leave no stray key behind.
				_ = os.Remove(out.KEKFile)
			}
			return keysetErr(err)
		}
		out.KEKSource = src.String()
		out.Info = keysetInfo(info)
		out.Serve = serveFlag
		if printKEK {
			out.KEK = generated
		}
		if src.Kind() == keysets.KEKKindEnv {
			fmt.Fprintf(a.rt.Stderr, "warning: %s.\n", keysets.EnvAdvice)
		}
		if a.json() {
			return printJSON(a.rt.Stdout, out)
		}
		kv := [][2]string{
			{"keyset", out.Keyset},
			{"encrypted", yesNo(info.Encrypted)},
			{"kek", out.KEKSource},
			{"kek generated", yesNo(out.KEKGenerated)},
			{"primary key id", itoa(info.PrimaryKeyID)},
			{"start the host with", out.Serve},
		}
		if out.KEK != "" {
			kv = append(kv, [2]string{"kek value (shown once; store it in a secret manager)", out.KEK})
		}
		if err := fields(a.rt.Stdout, kv); err != nil {
			return err
		}
		a.warnKEKInDataDir(out.KEKFile, dataDir)
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&kekEnv, "kek-env", server.DefaultKEKEnv, "environment variable holding the base64 KEK (used when set, as serve does)")
	f.StringVar(&kekFile, "kek-file", "", "use (or generate) the KEK in this file")
	f.StringVar(&kmsURI, "kms-uri", "", "use this KMS key as the KEK")
	f.BoolVar(&printKEK, "print-kek", false, "print a KEK this command generated (once; treat the output as a secret)")
	return cmd
}

// keysetInfo converts keysets.Info to the API's shape.
func keysetInfo(info keysets.Info) apitypes.KeysetInfo {
	out := apitypes.KeysetInfo{PrimaryKeyID: info.PrimaryKeyID, Encrypted: info.Encrypted, KEK: info.KEK, Keys: []apitypes.KeyInfo{}}
	for _, k := range info.Keys {
		out.Keys = append(out.Keys, apitypes.KeyInfo{ID: k.ID, Status: k.Status, Type: k.Type, Primary: k.Primary})
	}
	return out
}

func (a *app) keysetAPICommand(name, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:     name,
		Short:   short,
		Long:    long,
		Example: "  connhost keyset " + name + " -o json",
		Args:    args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			var info apitypes.KeysetInfo
			if name == "rotate" {
				info, err = c.RotateKeyset(ctx)
			} else {
				info, err = c.KeysetInfo(ctx)
			}
			if err != nil {
				return err
			}
			return a.printKeysetInfo(info)
		}),
	}
}

func (a *app) printKeysetInfo(info apitypes.KeysetInfo) error {
	if a.json() {
		info.Keys = items(info.Keys)
		return printJSON(a.rt.Stdout, info)
	}
	if err := fields(a.rt.Stdout, [][2]string{
		{"primary key id", itoa(info.PrimaryKeyID)},
		{"encrypted", yesNo(info.Encrypted)},
		{"kek", info.KEK},
	}); err != nil {
		return err
	}
	fmt.Fprintln(a.rt.Stdout)
	rows := make([][]string, 0, len(info.Keys))
	for _, k := range info.Keys {
		rows = append(rows, []string{itoa(k.ID), k.Status, k.Type, yesNo(k.Primary)})
	}
	return table(a.rt.Stdout, []string{"KEY ID", "STATUS", "TYPE", "PRIMARY"}, rows)
}

func (a *app) keysetRewrapCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rewrap",
		Short: "Re-encrypt every stored credential under the primary key",
		Long: `Re-encrypt every stored credential whose ciphertext is under an older key with
the keyset's primary key. Credentials that no longer decrypt are quarantined
and listed (their runs are refused until a new capture); failures are listed
with their reason.`,
		Example: `  connhost keyset rewrap -o json`,
		Args:    args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			rep, err := c.RewrapKeyset(ctx)
			if err != nil {
				return err
			}
			if a.json() {
				rep.Quarantined, rep.Failed = items(rep.Quarantined), items(rep.Failed)
				return printJSON(a.rt.Stdout, rep)
			}
			if err := fields(a.rt.Stdout, [][2]string{
				{"primary key id", itoa(rep.PrimaryKeyID)},
				{"scanned", itoa(rep.Scanned)},
				{"rewrapped", itoa(rep.Rewrapped)},
				{"already current", itoa(rep.Current)},
				{"quarantined", list(rep.Quarantined)},
			}); err != nil {
				return err
			}
			if len(rep.Failed) == 0 {
				return nil
			}
			fmt.Fprintln(a.rt.Stdout)
			rows := make([][]string, 0, len(rep.Failed))
			for _, f := range rep.Failed {
				rows = append(rows, []string{f.ConnectionID, f.Reason})
			}
			return table(a.rt.Stdout, []string{"CONNECTION", "REWRAP FAILED"}, rows)
		}),
	}
}
