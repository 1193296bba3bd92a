package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

func testCredentialLifecycle(t *testing.T, f *fixture) {
	c := f.connection("alpha")

	// Capture.
	t0 := f.now()
	meta := f.capture(c.ID, "ct-1")
	want := store.CredentialMeta{
		ConnectionID: c.ID, Kind: store.CredentialStaticSecret, State: store.CredentialActive,
		Names: []string{"API_USER", "API_TOKEN"}, KeyID: 42, CapturedAt: t0, UpdatedAt: t0,
	}
	diff(t, "captured", want, meta)
	diff(t, "meta", want, must(f.s.GetCredentialMeta(f.ctx, c.ID))(t))
	diff(t, "credential", store.Credential{CredentialMeta: want, Ciphertext: []byte("ct-1")}, must(f.s.GetCredential(f.ctx, c.ID))(t))

	// Check result.
	t1 := f.advance(time.Second)
	meta = must(f.s.SetCredentialValidity(f.ctx, c.ID, false, "401 from provider"))(t)
	want.Validity, want.UpdatedAt = &store.Validity{CheckedAt: t1, Valid: false, Message: "401 from provider"}, t1
	diff(t, "validity", want, meta)

	// Rotate: new values, rotated_at stamped, capture time and connection
	// untouched, validity cleared until the next check.
	t2 := f.advance(time.Hour)
	rot := sealed(c.ID, "ct-2")
	rot.Names, rot.KeyID = []string{"API_TOKEN"}, 43
	meta = must(f.s.RotateCredential(f.ctx, rot))(t)
	want.Names, want.KeyID, want.RotatedAt, want.UpdatedAt, want.Validity = []string{"API_TOKEN"}, 43, t2, t2, nil
	diff(t, "rotated", want, meta)
	diff(t, "rotated credential", store.Credential{CredentialMeta: want, Ciphertext: []byte("ct-2")}, must(f.s.GetCredential(f.ctx, c.ID))(t))
	diff(t, "connection after rotate", c, must(f.s.GetConnection(f.ctx, c.ID))(t))

	// Quarantine, then revoke.
	t3 := f.advance(time.Second)
	meta = must(f.s.QuarantineCredential(f.ctx, c.ID))(t)
	want.State, want.QuarantinedAt, want.UpdatedAt = store.CredentialQuarantined, t3, t3
	diff(t, "quarantined", want, meta)
	t4 := f.advance(time.Second)
	meta = must(f.s.RevokeCredential(f.ctx, c.ID))(t)
	want.State, want.RevokedAt, want.UpdatedAt = store.CredentialRevoked, t4, t4
	diff(t, "revoked", want, meta)
	diff(t, "revoked credential keeps its ciphertext", store.Credential{CredentialMeta: want, Ciphertext: []byte("ct-2")},
		must(f.s.GetCredential(f.ctx, c.ID))(t))

	// Delete: ciphertext gone, tombstone kept.
	t5 := f.advance(time.Second)
	meta = must(f.s.DeleteCredential(f.ctx, c.ID))(t)
	want.State, want.DeletedAt, want.UpdatedAt = store.CredentialDeleted, t5, t5
	diff(t, "deleted", want, meta)
	diff(t, "tombstone", store.Credential{CredentialMeta: want}, must(f.s.GetCredential(f.ctx, c.ID))(t))

	// Nothing but a capture brings it back; a capture starts afresh.
	t6 := f.advance(time.Second)
	meta = f.capture(c.ID, "ct-3")
	diff(t, "recaptured", store.CredentialMeta{
		ConnectionID: c.ID, Kind: store.CredentialStaticSecret, State: store.CredentialActive,
		Names: []string{"API_USER", "API_TOKEN"}, KeyID: 42, CapturedAt: t6, UpdatedAt: t6,
	}, meta)

	// Unknown connection.
	_, err := f.s.CaptureCredential(f.ctx, sealed("conn_missing", "ct"))
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	_, err = f.s.GetCredential(f.ctx, "conn_missing")
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
}

// credentialOps are the lifecycle operations, by name.
func credentialOps(f *fixture) map[string]func(connID string) (store.CredentialMeta, error) {
	return map[string]func(string) (store.CredentialMeta, error){
		"capture": func(id string) (store.CredentialMeta, error) {
			return f.s.CaptureCredential(f.ctx, sealed(id, "ct-new"))
		},
		"rotate": func(id string) (store.CredentialMeta, error) {
			return f.s.RotateCredential(f.ctx, sealed(id, "ct-new"))
		},
		"revoke":     func(id string) (store.CredentialMeta, error) { return f.s.RevokeCredential(f.ctx, id) },
		"delete":     func(id string) (store.CredentialMeta, error) { return f.s.DeleteCredential(f.ctx, id) },
		"quarantine": func(id string) (store.CredentialMeta, error) { return f.s.QuarantineCredential(f.ctx, id) },
		"validity": func(id string) (store.CredentialMeta, error) {
			return f.s.SetCredentialValidity(f.ctx, id, true, "ok")
		},
	}
}

// credentialIn returns a connection whose credential is in state ("" for
// never stored).
func (f *fixture) credentialIn(state store.CredentialState) store.Connection {
	f.t.Helper()
	c := f.connection("alpha")
	if state == "" {
		return c
	}
	f.capture(c.ID, "ct-old")
	var err error
	switch state {
	case store.CredentialRevoked:
		_, err = f.s.RevokeCredential(f.ctx, c.ID)
	case store.CredentialDeleted:
		_, err = f.s.DeleteCredential(f.ctx, c.ID)
	case store.CredentialQuarantined:
		_, err = f.s.QuarantineCredential(f.ctx, c.ID)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func testCredentialTransitions(t *testing.T, f *fixture) {
	const (
		active      = store.CredentialActive
		revoked     = store.CredentialRevoked
		deleted     = store.CredentialDeleted
		quarantined = store.CredentialQuarantined
		never       = store.CredentialState("")
		refused     = store.CredentialState("refused")
	)
	// want: the state after the operation, or refused.
	table := map[store.CredentialState]map[string]store.CredentialState{
		never:       {"capture": active, "rotate": refused, "revoke": refused, "delete": refused, "quarantine": refused, "validity": refused},
		active:      {"capture": active, "rotate": active, "revoke": revoked, "delete": deleted, "quarantine": quarantined, "validity": active},
		revoked:     {"capture": active, "rotate": refused, "revoke": refused, "delete": deleted, "quarantine": refused, "validity": revoked},
		quarantined: {"capture": active, "rotate": refused, "revoke": revoked, "delete": deleted, "quarantine": refused, "validity": quarantined},
		deleted:     {"capture": active, "rotate": refused, "revoke": refused, "delete": refused, "quarantine": refused, "validity": refused},
	}
	ops := credentialOps(f)
	for from, row := range table {
		for op, want := range row {
			name := fmt.Sprintf("%s/%s", cmpName(from), op)
			t.Run(name, func(t *testing.T) {
				c := f.credentialIn(from)
				before, beforeErr := f.s.GetCredential(f.ctx, c.ID)
				got, err := ops[op](c.ID)
				if want != refused {
					if err != nil {
						t.Fatalf("%s from %s: %v", op, cmpName(from), err)
					}
					if got.State != want {
						t.Fatalf("state = %s, want %s", got.State, want)
					}
					diff(t, "returned vs stored", got, must(f.s.GetCredentialMeta(f.ctx, c.ID))(t))
					return
				}
				switch {
				case from == never:
					wantErr(t, err, store.ErrCredentialNotFound, "")
				default:
					wantErr(t, err, store.ErrCredentialState, failure.Conflict)
					var se *store.CredentialStateError
					if !errors.As(err, &se) || se.State != from || se.ConnectionID != c.ID {
						t.Errorf("error = %#v, want *CredentialStateError in state %s", err, from)
					}
				}
				after, afterErr := f.s.GetCredential(f.ctx, c.ID)
				diff(t, "refused operation changed the credential", before, after)
				if (afterErr == nil) != (beforeErr == nil) {
					t.Errorf("lookup error changed: %v → %v", beforeErr, afterErr)
				}
			})
		}
	}
}

func cmpName(s store.CredentialState) string {
	if s == "" {
		return "never"
	}
	return string(s)
}

func testCredentialDeletedIsNotNeverStored(t *testing.T, f *fixture) {
	never := f.connection("alpha")
	deleted := f.credentialIn(store.CredentialDeleted)

	_, err := f.s.GetCredentialMeta(f.ctx, never.ID)
	wantErr(t, err, store.ErrCredentialNotFound, "")

	m := must(f.s.GetCredentialMeta(f.ctx, deleted.ID))(t)
	if m.State != store.CredentialDeleted || m.DeletedAt.IsZero() {
		t.Errorf("tombstone = %+v, want state deleted with deleted_at", m)
	}
	c := must(f.s.GetCredential(f.ctx, deleted.ID))(t)
	if c.Ciphertext != nil {
		t.Errorf("deleted credential still has %d ciphertext bytes", len(c.Ciphertext))
	}
}

func testHasActiveCredentialMatrix(t *testing.T, f *fixture) {
	for _, tc := range []struct {
		state store.CredentialState
		want  bool
	}{
		{store.CredentialActive, true},
		{store.CredentialRevoked, false},
		{store.CredentialDeleted, false},
		{store.CredentialQuarantined, false},
		{"", false},
	} {
		t.Run(cmpName(tc.state), func(t *testing.T) {
			c := f.credentialIn(tc.state)
			// Eligibility code holds only a store.Presence.
			var p store.Presence = f.s
			if got := must(p.HasActiveCredential(f.ctx, c.ID))(t); got != tc.want {
				t.Errorf("HasActiveCredential = %v, want %v", got, tc.want)
			}
			key, active := must2(p.ActiveCredentialKey(f.ctx, c.ID))(t)
			if wantKey := map[bool]uint32{true: 42}[tc.want]; active != tc.want || key != wantKey {
				t.Errorf("ActiveCredentialKey = %d, %v; want %d, %v", key, active, wantKey, tc.want)
			}
		})
	}
	t.Run("unknown connection", func(t *testing.T) {
		if got := must(f.s.HasActiveCredential(f.ctx, "conn_missing"))(t); got {
			t.Error("HasActiveCredential(unknown) = true")
		}
		if _, active := must2(f.s.ActiveCredentialKey(f.ctx, "conn_missing"))(t); active {
			t.Error("ActiveCredentialKey(unknown) is active")
		}
	})
}

func testCredentialValidation(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	for name, mutate := range map[string]func(*store.SealedCredential){
		"no connection":  func(s *store.SealedCredential) { s.ConnectionID = "" },
		"unknown kind":   func(s *store.SealedCredential) { s.Kind = "oauth" },
		"no names":       func(s *store.SealedCredential) { s.Names = nil },
		"bad name":       func(s *store.SealedCredential) { s.Names = []string{"API-TOKEN"} },
		"repeated name":  func(s *store.SealedCredential) { s.Names = []string{"A", "A"} },
		"no ciphertext":  func(s *store.SealedCredential) { s.Ciphertext = nil },
		"leading digit":  func(s *store.SealedCredential) { s.Names = []string{"1TOKEN"} },
		"empty env name": func(s *store.SealedCredential) { s.Names = []string{""} },
	} {
		t.Run(name, func(t *testing.T) {
			sc := sealed(c.ID, "ct")
			mutate(&sc)
			_, err := f.s.CaptureCredential(f.ctx, sc)
			wantErr(t, err, store.ErrInvalid, "")
			_, err = f.s.RotateCredential(f.ctx, sc)
			wantErr(t, err, store.ErrInvalid, "")
		})
	}
	_, err := f.s.GetCredentialMeta(f.ctx, c.ID)
	wantErr(t, err, store.ErrCredentialNotFound, "")
}

func testCredentialRewrap(t *testing.T, f *fixture) {
	var ids []string
	for i := range 5 {
		c := f.connection("alpha")
		f.capture(c.ID, fmt.Sprintf("ct-%d", i))
		ids = append(ids, c.ID)
	}
	must(f.s.DeleteCredential(f.ctx, ids[1]))(t)
	must(f.s.RevokeCredential(f.ctx, ids[2]))(t) // revoked still holds a ciphertext to rewrap
	f.connection("alpha")                        // never stored: not listed

	// Page through, two at a time, in connection id order.
	var seen []string
	after := ""
	for {
		page := must(f.s.ListCredentialCiphertexts(f.ctx, after, 2))(t)
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("page of %d, want at most 2", len(page))
		}
		for _, c := range page {
			if len(c.Ciphertext) == 0 || c.KeyID != 42 || c.Kind != store.CredentialStaticSecret {
				t.Errorf("row %+v, want a ciphertext sealed by key 42", c)
			}
			seen = append(seen, c.ConnectionID)
		}
		after = page[len(page)-1].ConnectionID
	}
	diff(t, "listed", []string{ids[0], ids[2], ids[3], ids[4]}, seen)

	// Compare-and-swap.
	before := must(f.s.GetCredential(f.ctx, ids[0]))(t)
	f.advance(time.Second)
	if err := f.s.ReplaceCiphertext(f.ctx, ids[0], []byte("ct-0"), []byte("rewrapped-0"), 99); err != nil {
		t.Fatal(err)
	}
	after0 := must(f.s.GetCredential(f.ctx, ids[0]))(t)
	want := before
	want.Ciphertext, want.KeyID, want.UpdatedAt = []byte("rewrapped-0"), 99, f.now()
	diff(t, "rewrapped (state, names, stamps kept)", want, after0)

	err := f.s.ReplaceCiphertext(f.ctx, ids[0], []byte("ct-0"), []byte("lost-race"), 100)
	wantErr(t, err, store.ErrCiphertextChanged, "")
	diff(t, "after lost race", after0, must(f.s.GetCredential(f.ctx, ids[0]))(t))

	err = f.s.ReplaceCiphertext(f.ctx, ids[1], []byte("ct-1"), []byte("x"), 100)
	wantErr(t, err, store.ErrCredentialState, failure.Conflict)
	never := f.connection("alpha")
	err = f.s.ReplaceCiphertext(f.ctx, never.ID, []byte("a"), []byte("b"), 100)
	wantErr(t, err, store.ErrCredentialNotFound, "")
	err = f.s.ReplaceCiphertext(f.ctx, "conn_missing", []byte("a"), []byte("b"), 100)
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	err = f.s.ReplaceCiphertext(f.ctx, ids[0], []byte("rewrapped-0"), nil, 100)
	wantErr(t, err, store.ErrInvalid, "")
}

func testCredentialKeyUse(t *testing.T, f *fixture) {
	diff(t, "no credentials", store.KeyUse{}, must(f.s.CredentialKeyUse(f.ctx, 42))(t))
	for _, state := range []store.CredentialState{store.CredentialActive, store.CredentialActive,
		store.CredentialRevoked, store.CredentialQuarantined, store.CredentialDeleted} {
		f.credentialIn(state) // sealed by key 42
	}
	other := f.connection("alpha")
	sc := sealed(other.ID, "ct-other")
	sc.KeyID = 43
	must(f.s.CaptureCredential(f.ctx, sc))(t)
	f.connection("alpha") // never stored

	use := must(f.s.CredentialKeyUse(f.ctx, 42))(t)
	diff(t, "key 42", store.KeyUse{Active: 2, Revoked: 1, Quarantined: 1}, use)
	if use.Needed() != 3 {
		t.Errorf("Needed = %d, want 3 (active and revoked)", use.Needed())
	}
	diff(t, "key 43", store.KeyUse{Active: 1}, must(f.s.CredentialKeyUse(f.ctx, 43))(t))
	diff(t, "unused key", store.KeyUse{}, must(f.s.CredentialKeyUse(f.ctx, 4294967295))(t))

	// A rewrap moves a ciphertext to another key.
	must(f.s.RevokeCredential(f.ctx, other.ID))(t)
	if err := f.s.ReplaceCiphertext(f.ctx, other.ID, []byte("ct-other"), []byte("ct-moved"), 42); err != nil {
		t.Fatal(err)
	}
	diff(t, "key 43 after rewrap", store.KeyUse{}, must(f.s.CredentialKeyUse(f.ctx, 43))(t))
	diff(t, "key 42 after rewrap", store.KeyUse{Active: 2, Revoked: 2, Quarantined: 1}, must(f.s.CredentialKeyUse(f.ctx, 42))(t))
}

// testCredentialMetas: the batched metadata read returns exactly what
// GetCredentialMeta returns for each connection that stored a credential,
// in any state, leaves out those that never did and unknown ids, and
// spans more ids than one query asks for.
func testCredentialMetas(t *testing.T, f *fixture) {
	var ids []string
	want := map[string]store.CredentialMeta{}
	states := []store.CredentialState{"", store.CredentialActive, store.CredentialRevoked, store.CredentialDeleted, store.CredentialQuarantined}
	for i := range 230 {
		c := f.credentialIn(states[i%len(states)])
		ids = append(ids, c.ID)
		if i%len(states) == 0 {
			continue
		}
		want[c.ID] = must(f.s.GetCredentialMeta(f.ctx, c.ID))(t)
	}
	// A validity shows in the batch too.
	withValidity := ids[1]
	want[withValidity] = must(f.s.SetCredentialValidity(f.ctx, withValidity, false, "401 from provider"))(t)

	got := must(f.s.CredentialMetas(f.ctx, append(slices.Clone(ids), "conn_missing")))(t)
	diff(t, "metas", want, got)

	sub := []string{ids[0], ids[2], ids[2]}
	diff(t, "a few, one repeated", map[string]store.CredentialMeta{ids[2]: want[ids[2]]},
		must(f.s.CredentialMetas(f.ctx, sub))(t))
	if got := must(f.s.CredentialMetas(f.ctx, nil))(t); len(got) != 0 {
		t.Errorf("CredentialMetas(nil) = %v, want empty", got)
	}
}
