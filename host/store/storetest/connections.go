package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

func testConnectors(t *testing.T, f *fixture) {
	t0 := f.now()
	first := must(f.s.UpsertConnector(f.ctx, registration("alpha", "1.0.0", 'a')))(t)
	want := store.Connector{
		Key: "alpha", Version: "1.0.0", Manifest: json.RawMessage(`{"connector_key":"alpha","version":"1.0.0"}`),
		Path: "/plugins/alpha", SHA256: string(repeat('a', 64)), RegisteredAt: t0, UpdatedAt: t0,
	}
	diff(t, "first upsert", store.ConnectorUpsert{Connector: want, Created: true, Changed: true}, first)

	// Same binary again: nothing changes, not even updated_at.
	f.advance(time.Minute)
	same := must(f.s.UpsertConnector(f.ctx, registration("alpha", "1.0.0", 'a')))(t)
	diff(t, "same upsert", store.ConnectorUpsert{Connector: want, Previous: &want}, same)

	// A new binary: changed, with the previous row for the audit event.
	t2 := f.advance(time.Minute)
	next := must(f.s.UpsertConnector(f.ctx, registration("alpha", "1.1.0", 'b')))(t)
	wantNext := want
	wantNext.Version, wantNext.SHA256, wantNext.UpdatedAt = "1.1.0", string(repeat('b', 64)), t2
	wantNext.Manifest = json.RawMessage(`{"connector_key":"alpha","version":"1.1.0"}`)
	diff(t, "changed upsert", store.ConnectorUpsert{Connector: wantNext, Previous: &want, Changed: true}, next)

	// Only the path moved: stored, but not a change of binary.
	t3 := f.advance(time.Minute)
	reg := registration("alpha", "1.1.0", 'b')
	reg.Path = "/opt/plugins/alpha"
	moved := must(f.s.UpsertConnector(f.ctx, reg))(t)
	wantMoved := wantNext
	wantMoved.Path, wantMoved.UpdatedAt = reg.Path, t3
	diff(t, "moved upsert", store.ConnectorUpsert{Connector: wantMoved, Previous: &wantNext}, moved)

	diff(t, "get", wantMoved, must(f.s.GetConnector(f.ctx, "alpha"))(t))
	f.connector("beta")
	list := must(f.s.ListConnectors(f.ctx))(t)
	if len(list) != 2 || list[0].Key != "alpha" || list[1].Key != "beta" {
		t.Errorf("ListConnectors = %+v, want alpha, beta", list)
	}
	_, err := f.s.GetConnector(f.ctx, "missing")
	wantErr(t, err, store.ErrConnectorNotFound, failure.ConnectorNotFound)
}

func testConnectorValidation(t *testing.T, f *fixture) {
	for name, mutate := range map[string]func(*store.ConnectorRegistration){
		"no key":             func(r *store.ConnectorRegistration) { r.Key = "" },
		"no version":         func(r *store.ConnectorRegistration) { r.Version = "" },
		"no path":            func(r *store.ConnectorRegistration) { r.Path = "" },
		"short sha256":       func(r *store.ConnectorRegistration) { r.SHA256 = "abc" },
		"uppercase sha256":   func(r *store.ConnectorRegistration) { r.SHA256 = string(repeat('A', 64)) },
		"manifest not json":  func(r *store.ConnectorRegistration) { r.Manifest = json.RawMessage(`{`) },
		"manifest notobject": func(r *store.ConnectorRegistration) { r.Manifest = json.RawMessage(`[1]`) },
		"no manifest":        func(r *store.ConnectorRegistration) { r.Manifest = nil },
	} {
		t.Run(name, func(t *testing.T) {
			reg := registration("alpha", "1.0.0", 'a')
			mutate(&reg)
			_, err := f.s.UpsertConnector(f.ctx, reg)
			wantErr(t, err, store.ErrInvalid, "")
		})
	}
	if got := must(f.s.ListConnectors(f.ctx))(t); len(got) != 0 {
		t.Errorf("invalid registrations stored %d rows", len(got))
	}
}

func testConnections(t *testing.T, f *fixture) {
	_, err := f.s.CreateConnection(f.ctx, store.NewConnection{ConnectorKey: "nope"})
	wantErr(t, err, store.ErrConnectorNotFound, failure.ConnectorNotFound)

	f.connector("alpha")
	f.connector("beta")
	t0 := f.now()
	a1 := must(f.s.CreateConnection(f.ctx, store.NewConnection{ConnectorKey: "alpha", Label: "a1"}))(t)
	want := store.Connection{
		ID: a1.ID, ConnectorKey: "alpha", Label: "a1", Config: json.RawMessage(`{}`),
		State: store.ConnectionActive, CreatedAt: t0, UpdatedAt: t0,
	}
	diff(t, "created", want, a1)
	if len(a1.ID) < len("conn_")+26 || a1.ID[:5] != "conn_" {
		t.Errorf("id %q is not conn_<ulid>", a1.ID)
	}
	diff(t, "get", want, must(f.s.GetConnection(f.ctx, a1.ID))(t))

	f.advance(time.Second)
	a2 := f.connection("alpha")
	f.advance(time.Second)
	b1 := f.connection("beta")
	if a2.ID == a1.ID || b1.ID == a2.ID {
		t.Fatalf("ids not unique: %s %s %s", a1.ID, a2.ID, b1.ID)
	}
	must(f.s.SetConnectionState(f.ctx, a2.ID, store.ConnectionPaused))(t)

	ids := func(cs []store.Connection) []string {
		out := []string{}
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	for name, tc := range map[string]struct {
		filter store.ConnectionFilter
		want   []string
	}{
		"all":             {store.ConnectionFilter{}, []string{a1.ID, a2.ID, b1.ID}},
		"by connector":    {store.ConnectionFilter{ConnectorKey: "alpha"}, []string{a1.ID, a2.ID}},
		"by state":        {store.ConnectionFilter{State: store.ConnectionActive}, []string{a1.ID, b1.ID}},
		"by both":         {store.ConnectionFilter{ConnectorKey: "alpha", State: store.ConnectionPaused}, []string{a2.ID}},
		"nothing matches": {store.ConnectionFilter{ConnectorKey: "gamma"}, []string{}},
	} {
		t.Run("list "+name, func(t *testing.T) {
			diff(t, "ids", tc.want, ids(must(f.s.ListConnections(f.ctx, tc.filter))(t)))
		})
	}

	// Patches touch only the fields they set.
	t1 := f.advance(time.Minute)
	label := "renamed"
	got := must(f.s.UpdateConnection(f.ctx, a1.ID, store.ConnectionPatch{Label: &label}))(t)
	want.Label, want.UpdatedAt = "renamed", t1
	diff(t, "label patch", want, got)

	t2 := f.advance(time.Minute)
	sched := store.Schedule{Spec: "*/5 * * * *", Jitter: 30 * time.Second}
	got = must(f.s.UpdateConnection(f.ctx, a1.ID, store.ConnectionPatch{
		Config: json.RawMessage(`{"region":"us","page_size":50}`), Schedule: &sched,
	}))(t)
	// A schedule change moves the schedule generation; a label does not.
	want.Config, want.Schedule, want.UpdatedAt = json.RawMessage(`{"region":"us","page_size":50}`), sched, t2
	want.ScheduleGen = 1
	diff(t, "config+schedule patch", want, got)

	f.advance(time.Minute)
	diff(t, "empty patch", want, must(f.s.UpdateConnection(f.ctx, a1.ID, store.ConnectionPatch{}))(t))

	t3 := f.advance(time.Minute)
	none := store.Schedule{}
	got = must(f.s.UpdateConnection(f.ctx, a1.ID, store.ConnectionPatch{Schedule: &none}))(t)
	want.Schedule, want.UpdatedAt, want.ScheduleGen = none, t3, 2
	diff(t, "schedule cleared", want, got)
	diff(t, "get after patches", want, must(f.s.GetConnection(f.ctx, a1.ID))(t))

	// Jitter without an own spec: it spreads the connector's default.
	t4 := f.advance(time.Minute)
	onDefault := store.Schedule{Jitter: 20 * time.Second}
	got = must(f.s.UpdateConnection(f.ctx, a1.ID, store.ConnectionPatch{Schedule: &onDefault}))(t)
	want.Schedule, want.UpdatedAt, want.ScheduleGen = onDefault, t4, 3
	diff(t, "jitter on the default schedule", want, got)
	diff(t, "get jitter on the default schedule", want, must(f.s.GetConnection(f.ctx, a1.ID))(t))
	created := must(f.s.CreateConnection(f.ctx, store.NewConnection{ConnectorKey: "alpha", Schedule: onDefault}))(t)
	diff(t, "created with jitter only", onDefault, must(f.s.GetConnection(f.ctx, created.ID))(t).Schedule)
	must(f.s.DeleteConnection(f.ctx, created.ID))(t)

	for name, call := range map[string]func() error{
		"get": func() error { _, err := f.s.GetConnection(f.ctx, "conn_missing"); return err },
		"update": func() error {
			_, err := f.s.UpdateConnection(f.ctx, "conn_missing", store.ConnectionPatch{Label: &label})
			return err
		},
		"set state": func() error {
			_, err := f.s.SetConnectionState(f.ctx, "conn_missing", store.ConnectionPaused)
			return err
		},
	} {
		t.Run("unknown "+name, func(t *testing.T) {
			wantErr(t, call(), store.ErrConnectionNotFound, failure.ConnectionNotFound)
		})
	}
}

func testConnectionValidation(t *testing.T, f *fixture) {
	f.connector("alpha")
	c := f.connection("alpha")
	long := string(repeat('x', 5000))
	bad := "\xff"
	for name, n := range map[string]store.NewConnection{
		"no connector":           {},
		"config not json":        {ConnectorKey: "alpha", Config: json.RawMessage(`{"a":`)},
		"config not object":      {ConnectorKey: "alpha", Config: json.RawMessage(`"str"`)},
		"label too long":         {ConnectorKey: "alpha", Label: long},
		"label not utf-8":        {ConnectorKey: "alpha", Label: bad},
		"negative jitter":        {ConnectorKey: "alpha", Schedule: store.Schedule{Spec: "@hourly", Jitter: -time.Second}},
		"schedule spec too long": {ConnectorKey: "alpha", Schedule: store.Schedule{Spec: long}},
	} {
		t.Run("create "+name, func(t *testing.T) {
			_, err := f.s.CreateConnection(f.ctx, n)
			wantErr(t, err, store.ErrInvalid, "")
		})
	}
	for name, p := range map[string]store.ConnectionPatch{
		"config not object": {Config: json.RawMessage(`[]`)},
		"label not utf-8":   {Label: &bad},
		"negative jitter":   {Schedule: &store.Schedule{Spec: "@hourly", Jitter: -1}},
	} {
		t.Run("update "+name, func(t *testing.T) {
			_, err := f.s.UpdateConnection(f.ctx, c.ID, p)
			wantErr(t, err, store.ErrInvalid, "")
		})
	}
	_, err := f.s.SetConnectionState(f.ctx, c.ID, "deleted")
	wantErr(t, err, store.ErrInvalid, "")
	diff(t, "connection after invalid calls", c, must(f.s.GetConnection(f.ctx, c.ID))(t))
	if got := must(f.s.ListConnections(f.ctx, store.ConnectionFilter{}))(t); len(got) != 1 {
		t.Errorf("invalid creates stored rows: %d connections", len(got))
	}
}

func testConnectionStateTransitions(t *testing.T, f *fixture) {
	f.connector("alpha")
	ok, no := true, false
	for _, tc := range []struct {
		from, to store.ConnectionState
		allowed  bool
	}{
		{store.ConnectionActive, store.ConnectionPaused, ok},
		{store.ConnectionActive, store.ConnectionActive, ok},
		{store.ConnectionActive, store.ConnectionRevoked, ok},
		{store.ConnectionPaused, store.ConnectionActive, ok},
		{store.ConnectionPaused, store.ConnectionPaused, ok},
		{store.ConnectionPaused, store.ConnectionRevoked, ok},
		{store.ConnectionRevoked, store.ConnectionActive, no},
		{store.ConnectionRevoked, store.ConnectionPaused, no},
		{store.ConnectionRevoked, store.ConnectionRevoked, ok},
	} {
		t.Run(string(tc.from)+"→"+string(tc.to), func(t *testing.T) {
			c := f.connection("alpha")
			switch tc.from {
			case store.ConnectionPaused:
				c = must(f.s.SetConnectionState(f.ctx, c.ID, store.ConnectionPaused))(t)
			case store.ConnectionRevoked:
				c = must(f.s.SetConnectionState(f.ctx, c.ID, store.ConnectionRevoked))(t)
			}
			got, err := f.s.SetConnectionState(f.ctx, c.ID, tc.to)
			if !tc.allowed {
				wantErr(t, err, store.ErrInvalidTransition, failure.Conflict)
				var te *store.TransitionError
				if !asErr(err, &te) || te.From != tc.from || te.To != tc.to || te.ConnectionID != c.ID {
					t.Errorf("error = %#v, want *TransitionError{%s, %s→%s}", err, c.ID, tc.from, tc.to)
				}
				diff(t, "unchanged", c, must(f.s.GetConnection(f.ctx, c.ID))(t))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.to {
				t.Errorf("state = %s, want %s", got.State, tc.to)
			}
			if tc.from == tc.to {
				diff(t, "a no-op leaves the connection as it was", c, got)
			}
			diff(t, "stored", got, must(f.s.GetConnection(f.ctx, c.ID))(t))
		})
	}
}

func testConnectionListPaging(t *testing.T, f *fixture) {
	f.connector("alpha")
	f.connector("beta")
	var created []store.Connection // oldest first
	for i := range 11 {
		if i%3 == 0 {
			f.advance(time.Second) // some connections share a timestamp, some do not
		}
		key := "alpha"
		if i%2 == 1 {
			key = "beta"
		}
		c := f.connection(key)
		if i%4 == 0 {
			c = must(f.s.SetConnectionState(f.ctx, c.ID, store.ConnectionPaused))(t)
		}
		created = append(created, c)
	}
	oldestFirst := func(keep func(store.Connection) bool) []string {
		out := []string{}
		for _, c := range created {
			if keep(c) {
				out = append(out, c.ID)
			}
		}
		return out
	}
	for name, tc := range map[string]struct {
		filter store.ConnectionFilter
		want   []string
	}{
		"all":          {store.ConnectionFilter{}, oldestFirst(func(store.Connection) bool { return true })},
		"by connector": {store.ConnectionFilter{ConnectorKey: "beta"}, oldestFirst(func(c store.Connection) bool { return c.ConnectorKey == "beta" })},
		"by state":     {store.ConnectionFilter{State: store.ConnectionPaused}, oldestFirst(func(c store.Connection) bool { return c.State == store.ConnectionPaused })},
		"by both": {store.ConnectionFilter{ConnectorKey: "alpha", State: store.ConnectionActive}, oldestFirst(func(c store.Connection) bool {
			return c.ConnectorKey == "alpha" && c.State == store.ConnectionActive
		})},
		"unknown connector": {store.ConnectionFilter{ConnectorKey: "gamma"}, []string{}},
	} {
		for _, limit := range []int{1, 3, 100} {
			t.Run(fmt.Sprintf("%s/limit %d", name, limit), func(t *testing.T) {
				got := readAllPages(t, limit, len(created), func(cursor string) ([]store.Connection, string) {
					page := must(f.s.ListConnectionPage(f.ctx, store.ConnectionPageFilter{ConnectionFilter: tc.filter, Cursor: cursor, Limit: limit}))(t)
					return page.Connections, page.Next
				}, func(c store.Connection) string { return c.ID })
				diff(t, "connections, oldest first", tc.want, got)
				// The unpaged sweep sees the same connections in the same order.
				all := []string{}
				for _, c := range must(f.s.ListConnections(f.ctx, tc.filter))(t) {
					all = append(all, c.ID)
				}
				diff(t, "ListConnections", tc.want, all)
			})
		}
	}
	_, err := f.s.ListConnectionPage(f.ctx, store.ConnectionPageFilter{Cursor: "not-a-cursor"})
	wantErr(t, err, store.ErrInvalid, "")
}
