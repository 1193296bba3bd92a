package runner

import (
	"context"
	"sync"

	"github.com/connhost/connhost/host/store"
	"golang.org/x/sync/semaphore"
)

// pipe is a run's bounded buffer between the goroutine that receives the
// connector's messages (the launcher's emit) and the run's committer
// goroutine, so receiving and committing overlap.
//
// It holds at most maxRecords records and maxBytes bytes that were
// received and not yet committed — the batch being committed counts until
// its commit ends — so a put waits while the buffer is full, and the
// launcher's receive loop with it: the plugin's gRPC stream stops at its
// flow-control window and its Emit blocks. A put into an empty buffer is
// always taken, so one message larger than the bounds cannot wait
// forever.
//
// Every run's pipe also takes what it holds from the runner's shared
// budget (see Config.HostBufferBytes), so many runs at once hold no more
// than one bound together. The budget is fair (first come, first
// served) and always frees: what holds it is being committed, or queued
// and pressed to commit when a put waits with no commit under way (see
// budget.acquire).
//
// The queue is a list of segments, each the records received between two
// checkpoints and, once closed, the checkpoint that ends them. The
// committer waits for a checkpoint, groupCap records, a put waiting for
// room or the end (see ready), then takes everything queued, up to
// groupCap records, as one batch:
// whole closed segments with the last checkpoint among them, so a
// checkpoint commits with exactly the records received before it and not
// yet committed, never with a record received after it; or, when the
// oldest segment is still open (or alone exceeds the cap), a prefix of its
// records with no checkpoint. A record committed without a checkpoint is
// harmless: records are upserts, and the checkpoint never moves past it.
type pipe struct {
	mu   sync.Mutex
	cond sync.Cond // broadcast on every change, to the two goroutines

	segs       []segment // oldest first; only the last may be open
	held       int       // records received and not yet committed
	heldBytes  int       // their bytes (and the queued checkpoints')
	maxRecords int
	maxBytes   int
	groupCap   int
	shared     *budget

	closed bool // the receive side ended: drain, then stop
	// pressed asks the committer to commit the open segment now: the
	// receive side waits for room, here or in the shared budget.
	pressed bool
	err     error // the first commit failure: nothing is committed after it
}

// segment is the records received after the previous checkpoint and, once
// closed, the checkpoint received after them (nil for a checkpoint
// message without bytes, which commits the records but sets nothing).
type segment struct {
	recs       []store.Record
	bytes      int
	checkpoint []byte
	closed     bool
}

// batch is one commit: records and the checkpoint that covers them.
type batch struct {
	recs       []store.Record
	checkpoint []byte
	bytes      int
}

func newPipe(maxRecords, maxBytes, groupCap int, shared *budget) *pipe {
	p := &pipe{maxRecords: maxRecords, maxBytes: maxBytes, groupCap: max(groupCap, 1), shared: shared}
	p.cond.L = &p.mu
	shared.join(p)
	return p
}

// press asks the committer to commit what is queued now.
func (p *pipe) press() {
	p.mu.Lock()
	p.pressed = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

// recordBytes is what one record counts against the byte bound.
func recordBytes(r store.Record) int { return len(r.Stream) + len(r.Key) + len(r.Data) }

// recordOverhead is what a record costs the shared budget besides its
// bytes: its store.Record and its share of the decoded message.
const recordOverhead = 128

// cost is what records and bytes take from the shared budget.
func cost(records, bytes int) int64 { return int64(bytes + records*recordOverhead) }

// budget bounds what every run's pipe holds together, in bytes with
// recordOverhead per record.
type budget struct {
	sem *semaphore.Weighted
	max int64

	mu      sync.Mutex
	pipes   map[*pipe]struct{}
	busy    int // commits under way
	waiting int // puts waiting for the budget
}

func newBudget(max int64) *budget {
	return &budget{sem: semaphore.NewWeighted(max), max: max, pipes: map[*pipe]struct{}{}}
}

func (b *budget) join(p *pipe) {
	if b != nil {
		b.mu.Lock()
		b.pipes[p] = struct{}{}
		b.mu.Unlock()
	}
}

func (b *budget) leave(p *pipe) {
	if b != nil {
		b.mu.Lock()
		delete(b.pipes, p)
		b.mu.Unlock()
	}
}

// acquire waits for n (a request over the whole budget takes all of it,
// so one huge message waits for the others to drain, never forever).
// What holds the budget is either being committed — its commit ends and
// frees it — or queued, waiting for a checkpoint that may be slow to
// come: when a put must wait and no commit is under way, every pipe is
// pressed to commit what it holds. While commits run, none is pressed, so
// many runs streaming together keep their commits large.
func (b *budget) acquire(n int64) {
	if b == nil || n == 0 {
		return
	}
	n = min(n, b.max)
	if b.sem.TryAcquire(n) {
		return
	}
	b.mu.Lock()
	b.waiting++
	idle := b.busy == 0
	b.mu.Unlock()
	if idle {
		b.pressAll()
	}
	// Background: the budget always frees, and records received are never
	// dropped unqueued.
	_ = b.sem.Acquire(context.Background(), n)
	b.mu.Lock()
	b.waiting--
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.sem.Release(min(n, b.max))
}

// commitStarted and commitEnded count the commits under way; the last one
// to end while puts wait presses every pipe.
func (b *budget) commitStarted() {
	if b != nil {
		b.mu.Lock()
		b.busy++
		b.mu.Unlock()
	}
}

func (b *budget) commitEnded() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.busy--
	press := b.busy == 0 && b.waiting > 0
	b.mu.Unlock()
	if press {
		b.pressAll()
	}
}

func (b *budget) pressAll() {
	b.mu.Lock()
	pipes := make([]*pipe, 0, len(b.pipes))
	for p := range b.pipes {
		pipes = append(pipes, p)
	}
	b.mu.Unlock()
	for _, p := range pipes {
		p.press()
	}
}

// waitRoom waits until n records of size bytes fit, or a commit failed.
// Called with p.mu held.
func (p *pipe) waitRoom(n, bytes int) error {
	for p.err == nil && p.held > 0 && (p.held+n > p.maxRecords || p.heldBytes+bytes > p.maxBytes) {
		p.pressed = true
		p.cond.Broadcast()
		p.cond.Wait()
	}
	return p.err
}

// reserve waits until n records of size bytes fit the pipe's bounds,
// then takes their cost from the shared budget. Only the receive goroutine
// puts, so the room it waited for is still there when it queues. After a
// failed commit nothing is taken and the failure is returned.
func (p *pipe) reserve(n, bytes int) error {
	p.mu.Lock()
	err := p.waitRoom(n, bytes)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	p.shared.acquire(cost(n, bytes))
	p.mu.Lock()
	err = p.err
	p.mu.Unlock()
	if err != nil {
		p.shared.release(cost(n, bytes))
	}
	return err
}

// put queues records, waiting for room. It returns the commit failure
// that stopped the committer, if any; the records are then not queued.
func (p *pipe) put(recs []store.Record, bytes int) error {
	if len(recs) == 0 {
		return nil
	}
	if err := p.reserve(len(recs), bytes); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.segs); n > 0 && !p.segs[n-1].closed {
		last := &p.segs[n-1]
		last.recs = append(last.recs, recs...)
		last.bytes += bytes
	} else {
		p.segs = append(p.segs, segment{recs: recs, bytes: bytes})
	}
	p.held += len(recs)
	p.heldBytes += bytes
	p.cond.Broadcast()
	return nil
}

// putCheckpoint closes the open segment with checkpoint (or queues a
// checkpoint alone when no records wait).
func (p *pipe) putCheckpoint(checkpoint []byte) error {
	if err := p.reserve(0, len(checkpoint)); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.segs); n > 0 && !p.segs[n-1].closed {
		last := &p.segs[n-1]
		last.checkpoint, last.closed = checkpoint, true
		last.bytes += len(checkpoint)
	} else {
		p.segs = append(p.segs, segment{checkpoint: checkpoint, bytes: len(checkpoint), closed: true})
	}
	p.heldBytes += len(checkpoint)
	p.cond.Broadcast()
	return nil
}

// close ends the receive side: the committer commits what is queued and
// stops.
func (p *pipe) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

// ready reports whether the committer should take a batch now: a
// checkpoint closed the oldest segment, or its records reach the cap, or
// the receive side waits for room or has ended. Records without a
// checkpoint otherwise wait for more, so commits stay large.
func (p *pipe) ready() bool {
	if len(p.segs) == 0 {
		return false
	}
	head := p.segs[0]
	return head.closed || len(head.recs) >= p.groupCap || p.pressed || p.closed
}

// next waits for the next batch. It returns false once the receive side
// is closed and everything is taken, or after a commit failed.
func (p *pipe) next() (batch, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.err == nil && !p.ready() && !(p.closed && len(p.segs) == 0) {
		p.cond.Wait()
	}
	if p.err != nil || len(p.segs) == 0 {
		p.shared.leave(p)
		return batch{}, false
	}
	p.pressed = false
	p.shared.commitStarted()
	return p.take(), true
}

// take removes the next batch from the queue; see pipe. Called with p.mu
// held and at least one segment queued.
func (p *pipe) take() batch {
	var b batch
	whole := 0 // closed segments taken
	for len(p.segs) > 0 {
		sg := &p.segs[0]
		room := p.groupCap - len(b.recs)
		if sg.closed && len(sg.recs) <= room {
			if len(b.recs) == 0 {
				b.recs = sg.recs
			} else {
				b.recs = append(b.recs, sg.recs...)
			}
			b.bytes += sg.bytes
			if sg.checkpoint != nil {
				b.checkpoint = sg.checkpoint
			}
			p.segs[0] = segment{}
			p.segs = p.segs[1:]
			whole++
			continue
		}
		if whole > 0 {
			break // the next segment's records come after the checkpoint taken
		}
		// The oldest segment is open, or closed but larger than the cap:
		// commit a prefix of its records, without its checkpoint.
		n := min(room, len(sg.recs))
		b.recs = sg.recs[:n:n]
		for _, r := range b.recs {
			b.bytes += recordBytes(r)
		}
		sg.recs = sg.recs[n:]
		sg.bytes -= b.bytes
		if len(sg.recs) == 0 && !sg.closed {
			p.segs[0] = segment{}
			p.segs = p.segs[1:]
		}
		break
	}
	if len(p.segs) == 0 {
		p.segs = nil // let the array go
	}
	return b
}

// done ends a commit: its records and bytes leave the bounds, or, when it
// failed, the pipe stops and every put returns err.
func (p *pipe) done(b batch, err error) {
	p.mu.Lock()
	p.held -= len(b.recs)
	p.heldBytes -= b.bytes
	freed := cost(len(b.recs), b.bytes)
	if err != nil && p.err == nil {
		p.err = err
		// Never committed: the run says how many.
		freed += cost(p.held, p.heldBytes)
		p.segs, p.held, p.heldBytes = nil, 0, 0
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	// Outside p.mu: the budget may press this pipe too.
	p.shared.release(freed)
	p.shared.commitEnded()
}

// failed returns the commit failure, if any.
func (p *pipe) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// buffered returns the records and bytes received and not yet committed.
func (p *pipe) buffered() (records, bytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held, p.heldBytes
}
