package runner

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/connhost/connhost/host/store"
	"github.com/google/go-cmp/cmp"
)

// recs makes n records keyed from "k<from>", each with data of size bytes.
func recs(from, n, size int) []store.Record {
	out := make([]store.Record, n)
	for i := range out {
		out[i] = store.Record{Stream: "s", Key: "k" + strconv.Itoa(from+i), Data: []byte(strings.Repeat("1", size))}
	}
	return out
}

func sizeOf(rs []store.Record) int {
	n := 0
	for _, r := range rs {
		n += recordBytes(r)
	}
	return n
}

// shape is a batch as a test reads it: first and last key, and the
// checkpoint.
func shape(b batch) string {
	if len(b.recs) == 0 {
		return fmt.Sprintf("[] cp=%s", b.checkpoint)
	}
	return fmt.Sprintf("[%s..%s] cp=%s", b.recs[0].Key, b.recs[len(b.recs)-1].Key, b.checkpoint)
}

// TestPipeBatches: queued segments merge up to the cap, each batch ends
// at the last checkpoint it takes, records after a checkpoint never ride
// with it, and a segment larger than the cap commits a prefix without its
// checkpoint.
func TestPipeBatches(t *testing.T) {
	t.Parallel()
	// ops: "r<n>" puts n records, "c<x>" a checkpoint "x", "c" an empty
	// checkpoint message (nil bytes).
	for _, tt := range []struct {
		name string
		cap  int
		ops  []string
		want []string
	}{
		{"records only", 100, []string{"r3", "r2"}, []string{"[k0..k4] cp="}},
		{"checkpoints merge", 100, []string{"r3", "cA", "r2", "cB", "r4"},
			[]string{"[k0..k4] cp=B", "[k5..k8] cp="}},
		{"the cap splits at a checkpoint", 5, []string{"r3", "cA", "r2", "cB", "r4", "cC"},
			[]string{"[k0..k4] cp=B", "[k5..k8] cp=C"}},
		{"a segment over the cap commits a prefix first", 4, []string{"r3", "cA", "r6", "cB"},
			[]string{"[k0..k2] cp=A", "[k3..k6] cp=", "[k7..k8] cp=B"}},
		{"an open segment over the cap", 4, []string{"r10"},
			[]string{"[k0..k3] cp=", "[k4..k7] cp=", "[k8..k9] cp="}},
		{"a checkpoint alone", 100, []string{"cA"}, []string{"[] cp=A"}},
		{"checkpoints back to back keep the last", 100, []string{"r2", "cA", "cB"}, []string{"[k0..k1] cp=B"}},
		{"an empty checkpoint keeps the one before", 100, []string{"r2", "cA", "r1", "c"}, []string{"[k0..k2] cp=A"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newPipe(1000, 1<<20, tt.cap, nil)
			n := 0
			for _, op := range tt.ops {
				switch op[0] {
				case 'r':
					k, _ := strconv.Atoi(op[1:])
					rs := recs(n, k, 1)
					n += k
					if err := p.put(rs, sizeOf(rs)); err != nil {
						t.Fatal(err)
					}
				case 'c':
					var cp []byte
					if len(op) > 1 {
						cp = []byte(op[1:])
					}
					if err := p.putCheckpoint(cp); err != nil {
						t.Fatal(err)
					}
				}
			}
			p.close()
			var got []string
			for {
				b, ok := p.next()
				if !ok {
					break
				}
				got = append(got, shape(b))
				p.done(b, nil)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("batches (-want +got):\n%s", diff)
			}
			if r, b := p.buffered(); r != 0 || b != 0 {
				t.Errorf("after the drain %d records, %d bytes held", r, b)
			}
		})
	}
}

// TestPipeBackpressure: a put waits while what is received and not yet
// committed would pass either bound, the batch being committed included,
// and goes on once a commit ends; the buffer never holds more than the
// bounds (one message alone excepted).
func TestPipeBackpressure(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name                 string
		maxRecords, maxBytes int
		perMsg, size         int
	}{
		{"records bound", 10, 1 << 20, 3, 10},
		{"bytes bound: huge records", 1000, 10_000, 1, 4000},
		{"a message over both bounds still passes alone", 2, 100, 5, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				p := newPipe(tt.maxRecords, tt.maxBytes, 1000, nil)
				msgSize := tt.perMsg * (len("s") + len("k0") + tt.size) // keys below 10 are 2 bytes
				const msgs = 6
				accepted := make(chan int, msgs)
				go func() {
					for i := range msgs {
						rs := recs(0, tt.perMsg, tt.size)
						for j := range rs {
							rs[j].Key = "k" + strconv.Itoa(j%10)
						}
						if err := p.put(rs, sizeOf(rs)); err != nil {
							t.Error(err)
							return
						}
						held, bytes := p.buffered()
						if held > max(tt.maxRecords, tt.perMsg) || bytes > max(tt.maxBytes, msgSize) {
							t.Errorf("holding %d records, %d bytes; bounds %d, %d", held, bytes, tt.maxRecords, tt.maxBytes)
						}
						accepted <- i + 1
					}
					p.close()
				}()
				// The committer takes the first batch and does not end it:
				// the sender fills the buffer and waits.
				b, _ := p.next()
				synctest.Wait()
				n := len(accepted)
				wantBlocked := min(msgs, max(1, min(tt.maxRecords/tt.perMsg, tt.maxBytes/msgSize)))
				if n != wantBlocked {
					t.Fatalf("%d messages accepted while the first commit runs, want %d", n, wantBlocked)
				}
				if held, bytes := p.buffered(); n < msgs && (held+tt.perMsg <= tt.maxRecords && bytes+msgSize <= tt.maxBytes) {
					t.Fatalf("the sender waits with room left: %d records, %d bytes held", held, bytes)
				}
				// Each commit that ends lets the sender go on.
				for {
					p.done(b, nil)
					var ok bool
					if b, ok = p.next(); !ok {
						break
					}
				}
				synctest.Wait()
				if len(accepted) != msgs {
					t.Fatalf("%d of %d messages accepted after the drain", len(accepted), msgs)
				}
			})
		})
	}
}

// TestPipeCommitFailure: after a failed commit a waiting put and every
// later one return the failure, and the committer stops.
func TestPipeCommitFailure(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := newPipe(2, 1<<20, 2, nil)
		if err := p.put(recs(0, 2, 1), sizeOf(recs(0, 2, 1))); err != nil {
			t.Fatal(err)
		}
		b, _ := p.next()
		errc := make(chan error, 1)
		go func() { errc <- p.put(recs(2, 1, 1), 5) }()
		synctest.Wait()
		if len(errc) != 0 {
			t.Fatal("put did not wait for room")
		}
		boom := errors.New("disk full")
		p.done(b, boom)
		if err := <-errc; !errors.Is(err, boom) {
			t.Fatalf("waiting put = %v", err)
		}
		if err := p.putCheckpoint([]byte("x")); !errors.Is(err, boom) {
			t.Fatalf("later checkpoint = %v", err)
		}
		if _, ok := p.next(); ok {
			t.Fatal("the committer goes on after a failed commit")
		}
	})
}

// TestPipeWaitsForACheckpoint: records without a checkpoint wait for one,
// for the cap, or for a put that needs their room — in this run's buffer
// or in the budget all runs share — so commits stay large and the budget
// always frees.
func TestPipeWaitsForACheckpoint(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		then func(p, other *pipe) error
	}{
		{"a checkpoint", func(p, _ *pipe) error { return p.putCheckpoint([]byte("x")) }},
		{"the cap", func(p, _ *pipe) error { return p.put(recs(3, 7, 1), 7*4) }},
		{"a put waiting for room", func(p, _ *pipe) error { return p.put(recs(3, 18, 1), 18*4) }},
		{"another run waiting for the shared budget", func(_, other *pipe) error { return other.put(recs(0, 1, 1), 4) }},
		{"the end", func(p, _ *pipe) error { p.close(); return nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				// Three records of 3 bytes (s, k<n>, 1) cost 3*(4+overhead).
				shared := newBudget(cost(3, 3*4))
				p := newPipe(20, 1<<20, 10, shared)
				other := newPipe(20, 1<<20, 10, shared)
				if err := p.put(recs(0, 3, 1), 3*4); err != nil {
					t.Fatal(err)
				}
				taken := make(chan batch, 1)
				go func() {
					b, _ := p.next()
					taken <- b
				}()
				synctest.Wait()
				if len(taken) != 0 {
					t.Fatal("records without a checkpoint were taken at once")
				}
				go func() {
					if err := tt.then(p, other); err != nil {
						t.Error(err)
					}
				}()
				synctest.Wait()
				if len(taken) != 1 {
					t.Fatal("the records still wait")
				}
				p.done(<-taken, nil)
				p.close()
				other.close()
				for _, q := range []*pipe{p, other} {
					for {
						b, ok := q.next()
						if !ok {
							break
						}
						q.done(b, nil)
					}
				}
				synctest.Wait()
			})
		})
	}
}
