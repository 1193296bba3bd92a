// Package storetest is the conformance suite every store.Store backend
// runs unchanged: the SQLite and the PostgreSQL backends' tests both call
// Run.
//
// The suite owns the clock: Opener receives the func every timestamp must
// come from, and tests advance it to expire leases and order runs. Each
// subtest opens its own empty store and runs in parallel with the others.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
//			s, err := sqlite.Open(t.Context(), sqlite.Config{DataDir: t.TempDir(), Now: now})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jonboulle/clockwork"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// Opener returns a new, empty, migrated store whose clock is now. It
// registers the store's Close with t.Cleanup.
type Opener func(t *testing.T, now func() time.Time) store.Store

// Run runs the whole suite against the backend open returns.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"Connectors", testConnectors},
		{"ConnectorValidation", testConnectorValidation},
		{"ConnectorRegisteredConcurrently", testConnectorRegisteredConcurrently},
		{"Connections", testConnections},
		{"ConnectionListPaging", testConnectionListPaging},
		{"ConnectionValidation", testConnectionValidation},
		{"ConnectionStateTransitions", testConnectionStateTransitions},
		{"ConnectionIsolation", testConnectionIsolation},
		{"DeleteConnectionCascade", testDeleteConnectionCascade},
		{"DeleteConnectionRefusedWhileLeased", testDeleteConnectionRefusedWhileLeased},
		{"DeleteConnectionIsOneTransaction", testDeleteConnectionIsOneTransaction},
		{"DeleteConnectionNotFound", testDeleteConnectionNotFound},
		{"CredentialLifecycle", testCredentialLifecycle},
		{"CredentialTransitions", testCredentialTransitions},
		{"CredentialDeletedIsNotNeverStored", testCredentialDeletedIsNotNeverStored},
		{"HasActiveCredentialMatrix", testHasActiveCredentialMatrix},
		{"CredentialValidation", testCredentialValidation},
		{"CredentialRewrap", testCredentialRewrap},
		{"CredentialKeyUse", testCredentialKeyUse},
		{"CredentialMetas", testCredentialMetas},
		{"Runs", testRuns},
		{"Streak", testStreak},
		{"StreakCountsReapedRuns", testStreakCountsReapedRuns},
		{"Hold", testHold},
		{"Backoff", testBackoff},
		{"HoldRelease", testHoldRelease},
		{"HoldValidation", testHoldValidation},
		{"RunTransitions", testRunTransitions},
		{"RunListOrderAndPaging", testRunListOrderAndPaging},
		{"RunValidation", testRunValidation},
		{"RunProvenance", testRunProvenance},
		{"RunStreamRecords", testRunStreamRecords},
		{"Leases", testLeases},
		{"LeaseContention", testLeaseContention},
		{"LeaseExpiryTakeover", testLeaseExpiryTakeover},
		{"LeaseReclaim", testLeaseReclaim},
		{"CommitBatchUpsertsByKey", testCommitBatchUpsertsByKey},
		{"CommitBatchFencing", testCommitBatchFencing},
		{"CommitBatchInvalidRecordMovesNothing", testCommitBatchInvalidRecordMovesNothing},
		{"CommitBatchInterruptedIsAllOrNothing", testCommitBatchInterruptedIsAllOrNothing},
		{"Checkpoints", testCheckpoints},
		{"CheckpointReset", testCheckpointReset},
		{"ListRecordsPaging", testListRecordsPaging},
		{"ListRecordsEmitOrder", testListRecordsEmitOrder},
		{"ListRecordsAcrossStreams", testListRecordsAcrossStreams},
		{"Audit", testAudit},
		{"AuditAppendOnlyAPI", testAuditAppendOnlyAPI},
		{"AuditPaging", testAuditPaging},
		{"Enrollment", testEnrollment},
		{"EnrollmentReplacedConcurrently", testEnrollmentReplacedConcurrently},
		{"Locks", testLocks},
		{"RecordTicks", testRecordTicks},
		{"RecordTicksConcurrentHosts", testRecordTicksConcurrentHosts},
		{"RecordTicksClaimed", testRecordTicksClaimed},
		{"ClaimDue", testClaimDue},
		{"ClaimDueExclusive", testClaimDueExclusive},
		{"CompleteOccurrence", testCompleteOccurrence},
		{"EnqueueManual", testEnqueueManual},
		{"ScheduleChangesClearTheQueue", testScheduleChangesClearTheQueue},
		{"ReleaseAndCancelQueued", testReleaseAndCancelQueued},
		{"ReleaseClaims", testReleaseClaims},
		{"ClaimedBeforeAScheduleChangeStartsNothing", testClaimedBeforeAScheduleChangeStartsNothing},
		{"Hosts", testHosts},
		{"ReapHosts", testReapHosts},
		{"StopHostHandsWorkBack", testStopHostHandsWorkBack},
		{"StoreIdentity", testStoreIdentity},
		{"CredentialKeyIDs", testCredentialKeyIDs},
		{"TimestampsUTC", testTimestampsUTC},
		{"Ping", testPing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newFixture(t, open))
		})
	}
}

// start is the suite clock's epoch: whole microseconds, so every backend's
// time precision keeps it exactly, in a zone that is not UTC so a store that
// forgets to convert is caught.
var start = time.Date(2026, 3, 14, 15, 9, 26, 535_897_000, time.FixedZone("UTC+5", 5*3600))

type fixture struct {
	t     *testing.T
	s     store.Store
	clock *clockwork.FakeClock
	ctx   context.Context
}

func newFixture(t *testing.T, open Opener) *fixture {
	clock := clockwork.NewFakeClockAt(start)
	return &fixture{t: t, s: open(t, clock.Now), clock: clock, ctx: t.Context()}
}

// now is the suite clock in UTC.
func (f *fixture) now() time.Time { return f.clock.Now().UTC() }

// advance moves the clock by d (a whole number of microseconds).
func (f *fixture) advance(d time.Duration) time.Time {
	f.clock.Advance(d)
	return f.now()
}

// connector registers a connector with key.
func (f *fixture) connector(key string) store.Connector {
	f.t.Helper()
	u, err := f.s.UpsertConnector(f.ctx, registration(key, "1.0.0", 'a'))
	if err != nil {
		f.t.Fatalf("UpsertConnector(%s): %v", key, err)
	}
	return u.Connector
}

func registration(key, version string, sum byte) store.ConnectorRegistration {
	return store.ConnectorRegistration{
		Key:      key,
		Version:  version,
		Manifest: json.RawMessage(fmt.Sprintf(`{"connector_key":%q,"version":%q}`, key, version)),
		Path:     "/plugins/" + key,
		SHA256:   string(repeat(sum, 64)),
	}
}

func repeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// connection creates a connection of connector key (registering it).
func (f *fixture) connection(key string) store.Connection {
	f.t.Helper()
	if _, err := f.s.GetConnector(f.ctx, key); errors.Is(err, store.ErrConnectorNotFound) {
		f.connector(key)
	}
	c, err := f.s.CreateConnection(f.ctx, store.NewConnection{
		ConnectorKey: key,
		Label:        "conn of " + key,
		Config:       json.RawMessage(`{"region":"eu"}`),
		Schedule:     store.Schedule{Spec: "@every 1h", Jitter: time.Minute},
	})
	if err != nil {
		f.t.Fatalf("CreateConnection(%s): %v", key, err)
	}
	return c
}

// run creates a queued manual run of connID.
func (f *fixture) run(connID string) store.Run {
	f.t.Helper()
	r, err := f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: connID, Trigger: store.TriggerManual, HostID: "host-a"})
	if err != nil {
		f.t.Fatalf("CreateRun(%s): %v", connID, err)
	}
	return r
}

// runningRun creates a run of connID, leases the connection to it for an
// hour and marks it running: what the runner does before streaming.
func (f *fixture) runningRun(connID string) store.Run {
	f.t.Helper()
	r := f.run(connID)
	f.lease(connID, r.ID, "host-a", time.Hour)
	r, err := f.s.MarkRunRunning(f.ctx, r.ID, nil)
	if err != nil {
		f.t.Fatalf("MarkRunRunning: %v", err)
	}
	return r
}

func (f *fixture) lease(connID, runID, holder string, ttl time.Duration) store.LeaseGrant {
	f.t.Helper()
	g, err := f.s.AcquireLease(f.ctx, store.LeaseRequest{ConnectionID: connID, RunID: runID, Holder: holder, TTL: ttl})
	if err != nil {
		f.t.Fatalf("AcquireLease(%s, %s): %v", connID, runID, err)
	}
	return g
}

func (f *fixture) capture(connID string, ct string) store.CredentialMeta {
	f.t.Helper()
	m, err := f.s.CaptureCredential(f.ctx, sealed(connID, ct))
	if err != nil {
		f.t.Fatalf("CaptureCredential(%s): %v", connID, err)
	}
	return m
}

func sealed(connID, ct string) store.SealedCredential {
	return store.SealedCredential{
		ConnectionID: connID,
		Kind:         store.CredentialStaticSecret,
		Names:        []string{"API_USER", "API_TOKEN"},
		Ciphertext:   []byte(ct),
		KeyID:        42,
	}
}

// commit commits records of stream s with the given keys and value.
func (f *fixture) commit(connID, runID, stream string, value int, checkpoint []byte, keys ...string) {
	f.t.Helper()
	recs := make([]store.Record, len(keys))
	for i, k := range keys {
		recs[i] = store.Record{Stream: stream, Key: k, Data: json.RawMessage(fmt.Sprintf(`{"k":%q,"v":%d}`, k, value))}
	}
	if err := f.s.CommitBatch(f.ctx, connID, runID, recs, checkpoint); err != nil {
		f.t.Fatalf("CommitBatch: %v", err)
	}
}

// allRecords returns every record of a connection, following pages.
func (f *fixture) allRecords(connID, stream string) []store.StoredRecord {
	f.t.Helper()
	var out []store.StoredRecord
	cursor := ""
	for {
		p, err := f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: connID, Stream: stream, Cursor: cursor, Limit: store.MaxPageSize})
		if err != nil {
			f.t.Fatalf("ListRecords(%s): %v", connID, err)
		}
		out = append(out, p.Records...)
		if p.Next == "" {
			return out
		}
		cursor = p.Next
	}
}

// jsonComparer compares JSON documents by value: a backend may normalize
// whitespace and key order (jsonb).
var jsonComparer = cmp.Comparer(func(a, b json.RawMessage) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return string(a) == string(b)
	}
	return reflect.DeepEqual(va, vb)
})

// wantErr fails t unless err matches target (errors.Is) and, when code is
// set, carries that failure code.
func wantErr(t *testing.T, err, target error, code failure.Code) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
	if code != "" && failure.CodeOf(err) != code {
		t.Fatalf("failure.CodeOf(%v) = %q, want %q", err, failure.CodeOf(err), code)
	}
}

// must(v, err)(t) returns v, failing t if err is not nil.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func diff(t *testing.T, what string, want, got any, opts ...cmp.Option) {
	t.Helper()
	if d := cmp.Diff(want, got, append(opts, jsonComparer)...); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

// asErr is errors.As for a typed error pointer.
func asErr[T error](err error, target *T) bool { return errors.As(err, target) }

// countdownCtx is a context that becomes cancelled on the n-th call of
// Done: handing it to an operation cancels it at its n-th cancellation
// check, wherever that falls — before, inside or after its transaction.
// Driving n from 1 upwards interrupts an operation at every point it can
// observe, without timing.
type countdownCtx struct {
	context.Context
	mu    sync.Mutex
	left  int
	done  chan struct{}
	fired bool
}

func newCountdownCtx(parent context.Context, n int) *countdownCtx {
	return &countdownCtx{Context: context.WithoutCancel(parent), left: n, done: make(chan struct{})}
}

func (c *countdownCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fired {
		c.left--
		if c.left <= 0 {
			c.fired = true
			close(c.done)
		}
	}
	return c.done
}

func (c *countdownCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fired {
		return context.Canceled
	}
	return nil
}

// interruptEverywhere calls op with a countdown context for n = 1, 2, …
// until it succeeds, calling check after each attempt with the attempt's
// error. It fails t if op never succeeds or never failed first.
func interruptEverywhere(t *testing.T, op func(ctx context.Context) error, check func(n int, err error)) {
	t.Helper()
	const maxChecks = 2000
	failures := 0
	for n := 1; n <= maxChecks; n++ {
		err := op(newCountdownCtx(t.Context(), n))
		check(n, err)
		if t.Failed() {
			return
		}
		if err == nil {
			if failures == 0 {
				t.Fatalf("the operation succeeded at the first cancellation check: nothing was interrupted")
			}
			t.Logf("interrupted at %d points, then succeeded", failures)
			return
		}
		failures++
	}
	t.Fatalf("the operation did not succeed within %d cancellation checks", maxChecks)
}

// readAllPages reads a paged list from the first page to the last through
// read (a cursor in, one page's items and the next cursor out) and returns
// the key of every item in order. It fails the test when a page holds more
// than limit items or when paging goes on past maxPages pages.
func readAllPages[T any](t *testing.T, limit, maxPages int, read func(cursor string) ([]T, string), key func(T) string) []string {
	t.Helper()
	got := []string{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > maxPages {
			t.Fatal("paging does not end")
		}
		items, next := read(cursor)
		if len(items) > limit {
			t.Fatalf("page of %d items, limit %d", len(items), limit)
		}
		for _, it := range items {
			got = append(got, key(it))
		}
		if next == "" {
			return got
		}
		cursor = next
	}
}
