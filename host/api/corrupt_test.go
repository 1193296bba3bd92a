package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/connhost/connhost/host/api"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/apicall"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/keysets"
)

// corruptStore answers as a store whose pages are damaged.
type corruptStore struct{ api.Store }

var errCorrupt = &failure.Error{Code: failure.StoreCorrupt, Err: fmt.Errorf("%w: list records: database disk image is malformed", store.ErrCorrupt),
	Message: "the store is corrupt: restore it from a backup (the host is not ready until then)"}

func (corruptStore) Ping(context.Context) error { return errCorrupt }
func (corruptStore) ListRecords(context.Context, store.RecordQuery) (store.RecordPage, error) {
	return store.RecordPage{}, errCorrupt
}

// A read that hits a damaged page is a typed 500 store_corrupt, and the
// host is not ready: never a short 200.
func TestCorruptStoreIsTyped(t *testing.T) {
	t.Parallel()
	h := hosttest.New(t, hosttest.Options{})
	a, err := api.New(api.Config{Token: testToken, Store: corruptStore{h.Store}, Control: h.Control, Catalog: h.Catalog,
		Runs: h.Runner, Schedule: h.Scheduler, Logger: h.Logger.Named("http"),
		Keyset: &fakeKeyset{info: func() keysets.Info { return h.Keyset.Info() }}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() { a.Close(); srv.Close() })
	c := apicall.Caller{T: t, Base: srv.URL, Auth: "Bearer " + testToken, Client: srv.Client()}
	conn := h.CreateDemo(map[string]any{"records": 1}, "")
	for path, want := range map[string]int{
		"/readyz": http.StatusServiceUnavailable,
		"/v1/connections/" + conn.ID + "/records": http.StatusInternalServerError,
	} {
		r := c.Call(http.MethodGet, path, nil)
		if r.Status != want || r.ErrorBody(t).Code != string(failure.StoreCorrupt) {
			t.Errorf("GET %s = %d %s, want %d store_corrupt", path, r.Status, r.Body, want)
		}
	}
}
