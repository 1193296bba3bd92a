package cli

import (
	"context"
	"strconv"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/spf13/cobra"
)

// keysetKeyCommand is keyset disable KEY_ID and keyset enable KEY_ID: they
// go through the running host, which counts the credentials sealed under
// the key in the store, writes the keyset file, loads it at once, tells the
// other hosts of a shared store to reload it, and audits the change.
func (a *app) keysetKeyCommand(enable bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "disable KEY_ID",
		Short: "Disable an old key once no credential is sealed under it",
		Long: `Disable a key of the running host's keyset, the last step of a rotation
(rotate, rewrap, disable). Ciphertexts under a disabled key no longer decrypt.

Refused, typed, while any active or revoked credential is still sealed under
the key (key_in_use; the message says how many: run "connhost keyset rewrap"
first), for the primary key (key_is_primary) and for an unknown key id
(key_not_found). Quarantined credentials under the key do not block it; they
are counted in the output and need a new capture anyway.

The host writes the keyset file under its lock, loads it at once and tells
the other hosts of a shared store to reload it. Audited as keyset.key.disable.
Disabling a disabled key changes nothing. "connhost keyset enable" undoes it.`,
		Example: `  connhost keyset info
  connhost keyset rewrap && connhost keyset disable 1234567890
  connhost keyset disable 1234567890 -o json`,
		Args: args("KEY_ID"),
	}
	if enable {
		cmd.Use = "enable KEY_ID"
		cmd.Short = "Enable a disabled key again"
		cmd.Long = `Enable a disabled key of the running host's keyset again, undoing a premature
disable: ciphertexts under it decrypt again. Refused, typed, for an unknown
key id (key_not_found). The host writes the keyset file under its lock, loads
it at once and tells the other hosts of a shared store to reload it. Audited
as keyset.key.enable. Enabling an enabled key changes nothing.`
		cmd.Example = `  connhost keyset enable 1234567890`
	}
	cmd.RunE = a.wrap(func(ctx context.Context, argv []string) error {
		id, err := strconv.ParseUint(argv[0], 10, 32)
		if err != nil {
			return usageErrorf("KEY_ID must be a key id as \"connhost keyset info\" lists it (a decimal number from 0 to 4294967295), got %s", shown(argv[0]))
		}
		c, err := a.api()
		if err != nil {
			return err
		}
		var ch apitypes.KeyChange
		if enable {
			ch, err = c.EnableKey(ctx, uint32(id))
		} else {
			ch, err = c.DisableKey(ctx, uint32(id))
		}
		if err != nil {
			return err
		}
		if a.json() {
			ch.Keyset.Keys = items(ch.Keyset.Keys)
			return printJSON(a.rt.Stdout, ch)
		}
		status := ""
		for _, k := range ch.Keyset.Keys {
			if k.ID == ch.KeyID {
				status = k.Status
			}
		}
		kv := [][2]string{
			{"key id", itoa(ch.KeyID)},
			{"status", status},
			{"changed", yesNo(ch.Changed)},
			{"primary key id", itoa(ch.Keyset.PrimaryKeyID)},
		}
		if !enable {
			kv = append(kv, [2]string{"quarantined credentials under it", itoa(ch.QuarantinedCredentials)})
		}
		return fields(a.rt.Stdout, kv)
	})
	return cmd
}
