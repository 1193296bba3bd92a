package dispatch_test

// timedStore counts and times the dispatcher's store calls in the
// benchmark (reported with BENCH_TRACE=1).

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/connhost/connhost/host/store"
)

type timedStore struct {
	benchStore
	claims, claimed, claimNs, comps, compN, compNs, recs, recNs, recClaimed atomic.Int64
}

func (t *timedStore) ClaimDue(ctx context.Context, h string, now time.Time, n int) ([]store.Occurrence, error) {
	s := time.Now()
	out, err := t.benchStore.ClaimDue(ctx, h, now, n)
	if d := time.Since(s); d > 30*time.Millisecond && os.Getenv("BENCH_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "%s slow claim %s (%d)\n", time.Now().Format("15:04:05.000"), d.Round(time.Millisecond), len(out))
	}
	t.claims.Add(1)
	t.claimed.Add(int64(len(out)))
	t.claimNs.Add(int64(time.Since(s)))
	return out, err
}
func (t *timedStore) CompleteOccurrences(ctx context.Context, cs []store.Completion) ([]store.CompletionOutcome, error) {
	s := time.Now()
	out, err := t.benchStore.CompleteOccurrences(ctx, cs)
	if d := time.Since(s); d > 30*time.Millisecond && os.Getenv("BENCH_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "%s slow complete %s (%d)\n", time.Now().Format("15:04:05.000"), d.Round(time.Millisecond), len(cs))
	}
	t.comps.Add(1)
	t.compN.Add(int64(len(cs)))
	t.compNs.Add(int64(time.Since(s)))
	return out, err
}
func (t *timedStore) RecordTicks(ctx context.Context, ts []store.Tick) ([]store.TickOutcome, []store.Occurrence, error) {
	s := time.Now()
	out, claimed, err := t.benchStore.RecordTicks(ctx, ts)
	t.recs.Add(1)
	t.recNs.Add(int64(time.Since(s)))
	t.recClaimed.Add(int64(len(claimed)))
	return out, claimed, err
}
func (t *timedStore) report() {
	fmt.Fprintf(os.Stderr, "claims %d (avg %d, %s each) completions %d (avg %d, %s each) records %d (%s each, %d claimed as recorded)\n",
		t.claims.Load(), t.claimed.Load()/max(1, t.claims.Load()), time.Duration(t.claimNs.Load()/max(1, t.claims.Load())),
		t.comps.Load(), t.compN.Load()/max(1, t.comps.Load()), time.Duration(t.compNs.Load()/max(1, t.comps.Load())),
		t.recs.Load(), time.Duration(t.recNs.Load()/max(1, t.recs.Load())), t.recClaimed.Load())
}
