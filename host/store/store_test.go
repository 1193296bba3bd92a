package store_test

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

func TestErrors(t *testing.T) {
	t.Parallel()
	lease := store.Lease{ConnectionID: "conn_1", RunID: "run_1", Holder: "host-a", ExpiresAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for name, tc := range map[string]struct {
		err      error
		sentinel error
		code     failure.Code
	}{
		"connection not found": {store.ConnectionNotFound("conn_1"), store.ErrConnectionNotFound, failure.ConnectionNotFound},
		"connector not found":  {store.ConnectorNotFound("alpha"), store.ErrConnectorNotFound, failure.ConnectorNotFound},
		"run active":           {store.RunActive(lease), store.ErrLeaseHeld, failure.RunActive},
		"transition": {store.Conflict(&store.TransitionError{ConnectionID: "conn_1", From: store.ConnectionRevoked, To: store.ConnectionActive}),
			store.ErrInvalidTransition, failure.Conflict},
		"credential state": {store.Conflict(&store.CredentialStateError{ConnectionID: "conn_1", Op: "rotate", State: store.CredentialDeleted}),
			store.ErrCredentialState, failure.Conflict},
		"run not found": {&store.RunNotFoundError{ID: "run_1"}, store.ErrRunNotFound, failure.Internal},
		"run state":     {&store.RunStateError{RunID: "run_1", Op: "commit", Status: store.RunFailed}, store.ErrRunState, failure.Internal},
		"invalid":       {&store.InvalidError{Field: "config", Reason: "not a JSON object"}, store.ErrInvalid, failure.Internal},
		"lease is held": {&store.LeaseHeldError{Lease: lease}, store.ErrLeaseHeld, failure.Internal},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if !errors.Is(tc.err, tc.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", tc.err, tc.sentinel)
			}
			if got := failure.CodeOf(tc.err); got != tc.code {
				t.Errorf("failure.CodeOf = %q, want %q", got, tc.code)
			}
			if tc.code != failure.Internal && !errors.Is(tc.err, failure.New(tc.code, "")) {
				t.Errorf("errors.Is(err, failure.New(%s)) = false", tc.code)
			}
			if tc.err.Error() == "" {
				t.Error("empty message")
			}
		})
	}

	var held *store.LeaseHeldError
	if err := store.RunActive(lease); !errors.As(err, &held) || held.Lease != lease {
		t.Errorf("RunActive does not carry its lease: %#v", err)
	}
}

func TestPageLimit(t *testing.T) {
	t.Parallel()
	for in, want := range map[int]int{
		-1: store.DefaultPageSize, 0: store.DefaultPageSize, 1: 1, 250: 250,
		store.MaxPageSize: store.MaxPageSize, store.MaxPageSize + 1: store.MaxPageSize,
	} {
		if got := store.PageLimit(in); got != want {
			t.Errorf("PageLimit(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestStateTables(t *testing.T) {
	t.Parallel()
	t.Run("connection", func(t *testing.T) {
		for to, from := range map[store.ConnectionState][]store.ConnectionState{
			store.ConnectionActive:  {store.ConnectionPaused, store.ConnectionActive},
			store.ConnectionPaused:  {store.ConnectionActive, store.ConnectionPaused},
			store.ConnectionRevoked: {store.ConnectionActive, store.ConnectionPaused, store.ConnectionRevoked},
			"deleted":               nil,
		} {
			if got := to.ReachableFrom(); !slices.Equal(got, from) {
				t.Errorf("%s.ReachableFrom() = %v, want %v", to, got, from)
			}
			if to.Valid() != (from != nil) {
				t.Errorf("%s.Valid() = %v", to, to.Valid())
			}
		}
	})
	t.Run("run", func(t *testing.T) {
		for to, from := range map[store.RunStatus][]store.RunStatus{
			store.RunQueued:    nil,
			store.RunRunning:   nil,
			store.RunSucceeded: {store.RunRunning},
			store.RunRefused:   {store.RunQueued},
			store.RunFailed:    {store.RunQueued, store.RunRunning},
			store.RunCancelled: {store.RunQueued, store.RunRunning},
		} {
			if got := to.FinishableFrom(); !slices.Equal(got, from) {
				t.Errorf("%s.FinishableFrom() = %v, want %v", to, got, from)
			}
			if to.Terminal() != (from != nil) {
				t.Errorf("%s.Terminal() = %v", to, to.Terminal())
			}
			if !to.Valid() {
				t.Errorf("%s.Valid() = false", to)
			}
		}
		if store.RunStatus("done").Valid() {
			t.Error(`"done" is a valid status`)
		}
	})
	t.Run("credential", func(t *testing.T) {
		for _, s := range []store.CredentialState{store.CredentialActive, store.CredentialRevoked, store.CredentialDeleted, store.CredentialQuarantined} {
			if !s.Valid() {
				t.Errorf("%s.Valid() = false", s)
			}
		}
		if store.CredentialState("").Valid() {
			t.Error(`"" is a valid credential state`)
		}
	})
}

func TestLeaseExpired(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	l := store.Lease{ExpiresAt: at}
	for now, want := range map[time.Time]bool{
		at.Add(-time.Nanosecond): false,
		at:                       true, // expiry is inclusive: a lease is good until, not through, ExpiresAt
		at.Add(time.Second):      true,
	} {
		if got := l.Expired(now); got != want {
			t.Errorf("Expired(%s) = %v, want %v", now, got, want)
		}
	}
}

// TestPresenceIsNarrow: eligibility code gets a store.Presence, which
// exposes a credential's state and key id and nothing else — no
// ciphertext read.
func TestPresenceIsNarrow(t *testing.T) {
	t.Parallel()
	p := reflect.TypeFor[store.Presence]()
	var names []string
	for i := range p.NumMethod() {
		names = append(names, p.Method(i).Name)
	}
	if want := []string{"ActiveCredentialKey", "HasActiveCredential"}; !slices.Equal(names, want) {
		t.Errorf("store.Presence has methods %v, want only %v", names, want)
	}
	if !reflect.TypeFor[store.Credentials]().Implements(p) {
		t.Error("store.Credentials does not embed Presence")
	}
}
