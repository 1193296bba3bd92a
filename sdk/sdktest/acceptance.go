package sdktest

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Acceptance runs the checks every connector binary should pass, each as a
// subtest, with o describing a run that should succeed:
//
//   - Describe: the manifest passes manifest.Validate with
//     manifest.CheckSchedule;
//   - Check: the check with o reports a valid credential;
//   - Run: the run with o succeeds, sends no interaction, and every record
//     names a declared stream, has a key, and holds valid JSON; progress
//     names a declared stream or none;
//   - Resume: a second run from the first run's last checkpoint succeeds;
//   - CredentialsRequired (when the manifest declares auth.required): a
//     run whose environment lacks the names sends the credentials_required
//     interaction naming them, fails with code credentials_required, and
//     sends no record.
//
// It returns the result of the Run subtest.
func Acceptance(t *testing.T, binary string, o Options) *Result {
	t.Helper()
	var m manifest.Manifest
	t.Run("Describe", func(t *testing.T) {
		m = Describe(t, binary)
		if err := m.Validate(manifest.CheckSchedule); err != nil {
			t.Errorf("manifest: %v", err)
		}
	})
	t.Run("Check", func(t *testing.T) {
		res, err := CheckPlugin(t, binary, o)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if !res.Valid {
			t.Errorf("Check = %+v (failure %v), want valid", res, res.Failure)
		}
	})
	var first *Result
	t.Run("Run", func(t *testing.T) {
		first = RunPlugin(t, binary, o)
		if first.Err != nil {
			t.Fatalf("Run: %v", first.Err)
		}
		if len(first.Interactions) > 0 {
			t.Errorf("Run sent interactions %+v, want none", first.Interactions)
		}
		for i, r := range first.Records {
			if _, ok := m.StreamByName(r.Stream); !ok {
				t.Errorf("record %d: stream %q is not declared", i, r.Stream)
			}
			if r.Key == "" {
				t.Errorf("record %d (stream %q): empty key", i, r.Stream)
			}
			if !json.Valid(r.Data) {
				t.Errorf("record %d (%s/%s): data is not valid JSON", i, r.Stream, r.Key)
			}
		}
		for i, p := range first.Progress {
			if _, ok := m.StreamByName(p.Stream); p.Stream != "" && !ok {
				t.Errorf("progress %d: stream %q is not declared", i, p.Stream)
			}
		}
	})
	if first == nil || first.Err != nil {
		return first
	}
	if cp := first.LastCheckpoint(); cp != nil {
		t.Run("Resume", func(t *testing.T) {
			o2 := o
			o2.Checkpoint = cp
			if res := RunPlugin(t, binary, o2); res.Err != nil {
				t.Errorf("run resumed from %q: %v", cp, res.Err)
			}
		})
	}
	if len(m.Auth.Required) > 0 {
		t.Run("CredentialsRequired", func(t *testing.T) {
			o2 := o
			o2.Env = maps.Clone(o.Env)
			for _, n := range m.Auth.Required {
				delete(o2.Env, n)
			}
			res := RunPlugin(t, binary, o2)
			want := []wire.Interaction{{Kind: wire.InteractionCredentialsRequired, Missing: m.Auth.Required}}
			if diff := cmp.Diff(want, res.Interactions, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("interactions (-want +got):\n%s", diff)
			}
			if f := res.Failure(); f == nil || f.Code != wire.CodeCredentialsRequired {
				t.Errorf("Err = %v, want a %s failure", res.Err, wire.CodeCredentialsRequired)
			}
			if len(res.Records) > 0 {
				t.Errorf("sent %d records without credentials", len(res.Records))
			}
		})
	}
	return first
}
