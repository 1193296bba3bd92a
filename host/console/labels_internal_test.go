package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
	"github.com/google/go-cmp/cmp"
)

// fakeConnections is an API that answers GET /v1/connections/{id}: the
// connections it holds, 404 for others, and 503 for "conn_down". It
// counts the look-ups of each id.
type fakeConnections struct {
	mu    sync.Mutex
	conns map[string]apitypes.Connection
	asked map[string]int
}

func (f *fakeConnections) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/connections/")
	if r.Method != http.MethodGet || !ok {
		http.Error(w, "not this fake's", http.StatusTeapot)
		return
	}
	f.mu.Lock()
	f.asked[id]++
	conn, held := f.conns[id]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case id == "conn_down":
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(apitypes.Error{Error: apitypes.ErrorBody{Code: "unavailable", Message: "down"}})
	case !held:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(apitypes.Error{Error: apitypes.ErrorBody{Code: "connection_not_found", Message: "connection not found"}})
	default:
		_ = json.NewEncoder(w).Encode(conn)
	}
}

func TestConnLabels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		ids     []string
		want    map[string]connRef
		asked   map[string]int
		errCode string
	}{
		{"none", nil, map[string]connRef{}, map[string]int{}, ""},
		{"each distinct id once", []string{"conn_a", "conn_b", "conn_a", "", "conn_a"},
			map[string]connRef{"conn_a": {ID: "conn_a", Label: "Alpha"}, "conn_b": {ID: "conn_b"}},
			map[string]int{"conn_a": 1, "conn_b": 1}, ""},
		{"a deleted connection", []string{"conn_gone", "conn_a"},
			map[string]connRef{"conn_gone": {ID: "conn_gone", Gone: true}, "conn_a": {ID: "conn_a", Label: "Alpha"}},
			map[string]int{"conn_gone": 1, "conn_a": 1}, ""},
		{"another error is the page's", []string{"conn_a", "conn_down", "conn_b"}, nil,
			map[string]int{"conn_a": 1, "conn_down": 1}, "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := &fakeConnections{asked: map[string]int{}, conns: map[string]apitypes.Connection{
				"conn_a": {ID: "conn_a", Label: "Alpha"},
				"conn_b": {ID: "conn_b"},
			}}
			c, err := New(Config{API: api, Token: "labels-test-token"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.connLabels(context.Background(), tc.ids)
			var ae *client.APIError
			switch {
			case tc.errCode != "":
				if !errors.As(err, &ae) || ae.Code != tc.errCode {
					t.Fatalf("error %v, want %s", err, tc.errCode)
				}
			case err != nil:
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("labels (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.asked, api.asked); d != "" {
				t.Errorf("look-ups (-want +got):\n%s", d)
			}
		})
	}
}
