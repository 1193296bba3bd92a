package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/connhost/connhost/host/store"
)

// tickChunks are the sizes of the chunks RecordTicks cuts a round into,
// largest first: every statement is prepared once per size, and a
// statement's VALUES list (at most six parameters a row) stays well within
// SQLite's and PostgreSQL's limits.
var tickChunks = []int{400, 100, 25, 5, 1}

// chunkSize is the largest chunk size that fits n.
func chunkSize(n int) int {
	for _, c := range tickChunks {
		if c <= n {
			return c
		}
	}
	return n
}

// RecordTicks implements store.Dispatch. It is set-based: per chunk of
// ticks, one statement advances the watermarks, one inserts the
// occurrences, one counts the coalesced ticks and one tells duplicates
// from stale ticks — not a statement per tick, which a burst of 10,000
// connections due at one instant (and, on a cluster, every host recording
// them) would pay in round trips.
func (s *Store) RecordTicks(ctx context.Context, ticks []store.Tick) ([]store.TickOutcome, []store.Occurrence, error) {
	for i, t := range ticks {
		if err := t.Validate(); err != nil {
			var ie *store.InvalidError
			if errors.As(err, &ie) {
				ie.Field = fmt.Sprintf("ticks[%d].%s", i, ie.Field)
			}
			return nil, nil, err
		}
	}
	order := make([]int, len(ticks))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(strings.Compare(ticks[a].ConnectionID, ticks[b].ConnectionID), ticks[a].DueAt.Compare(ticks[b].DueAt))
	})
	// Round k holds the k-th tick of every connection: a connection's
	// ticks are recorded in order, one per statement.
	var rounds [][]int
	for k, i := range order {
		r := 0
		for j := k - 1; j >= 0 && ticks[order[j]].ConnectionID == ticks[i].ConnectionID; j-- {
			r++
		}
		if r == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[r] = append(rounds[r], i)
	}
	out := make([]store.TickOutcome, len(ticks))
	claimed := make([]*store.Occurrence, len(ticks))
	// Relaxed: a process crash loses nothing; a power loss can drop the
	// ticks of the last moment before it, which the next start's catch-up
	// (the clock-skew window) records again.
	err := s.txRelaxed(ctx, func(tx *txn) error {
		clear(claimed)
		now := s.stamp()
		for _, round := range rounds {
			for len(round) > 0 {
				n := chunkSize(len(round))
				if err := s.recordChunk(ctx, tx, ticks, round[:n], out, claimed, now); err != nil {
					return err
				}
				round = round[n:]
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, s.dbErr("record ticks", err)
	}
	var occs []store.Occurrence
	for _, o := range claimed {
		if o != nil {
			occs = append(occs, *o)
		}
	}
	return out, occs, nil
}

// values renders a VALUES list of rows, each of the given column types.
func (s *Store) values(rows int, types ...string) string {
	var b strings.Builder
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c, t := range types {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteString("CAST(? AS " + t + ")")
		}
		b.WriteByte(')')
	}
	return b.String()
}

// placeholders renders n comma-separated "?".
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// recordChunk records one tick each of distinct connections; the
// occurrences it records claimed go to claimed, by tick index.
func (s *Store) recordChunk(ctx context.Context, tx *txn, ticks []store.Tick, idx []int, out []store.TickOutcome,
	claimed []*store.Occurrence, now time.Time) error {
	ids := make([]any, len(idx))
	byID := make(map[string]int, len(idx))
	for k, i := range idx {
		ids[k] = ticks[i].ConnectionID
		byID[ticks[i].ConnectionID] = i
	}
	args := make([]any, 0, 6*len(idx))
	for _, i := range idx {
		t := ticks[i]
		args = append(args, t.ConnectionID, t.ScheduleGen, s.bindTime(s.trunc(t.DueAt)))
	}
	if s.d.ForUpdate != "" {
		// Many writers: read first which ticks another host has not
		// recorded yet (most are, on a cluster: every host records every
		// instant, the backups after the primary), then lock just those
		// rows, in id order so hosts never deadlock. A chunk with nothing
		// fresh is settled from that one read.
		fresh, err := s.freshTicks(ctx, tx, ticks, idx, ids, byID, out)
		if err != nil || len(fresh) == 0 {
			return err
		}
		lock := make([]any, 0, 2*len(idx))
		for _, i := range idx {
			lock = append(lock, ticks[i].ConnectionID, flag(fresh[ticks[i].ConnectionID]))
		}
		rows, err := s.query(ctx, tx, `WITH t(id, ok) AS (VALUES `+s.values(len(idx), "TEXT", s.d.IntType)+`)
			SELECT c.id FROM connections c JOIN t ON c.id = t.id WHERE t.ok = 1 ORDER BY c.id FOR UPDATE OF c`, lock...)
		if err != nil {
			return err
		}
		if err := drain(rows); err != nil {
			return err
		}
	}

	// 1. Advance each connection's watermark: what makes an instant
	// recorded once, whichever host's clock reached it first.
	advanced, err := s.ids(ctx, tx, `WITH t(id, gen, due) AS (VALUES `+s.values(len(idx), "TEXT", s.d.IntType, s.d.TimeType)+`)
		UPDATE connections SET last_due_at = t.due FROM t
		WHERE connections.id = t.id AND connections.state = 'active' AND connections.schedule_gen = t.gen
			AND (connections.last_due_at IS NULL OR connections.last_due_at < t.due)
			AND connections.hold_code = '' AND (connections.backoff_until IS NULL OR connections.backoff_until <= t.due)
		RETURNING connections.id`, args...)
	if err != nil {
		return err
	}

	// 2. An occurrence for each advanced connection that has none. Every
	// statement carries the whole chunk (a flag says which rows count), so
	// its text depends on the chunk size only.
	var inserted map[string]bool
	if len(advanced) > 0 {
		args = args[:0]
		occIDs := make([]string, len(idx))
		for k, i := range idx {
			t := ticks[i]
			occID, err := s.newID("occ_", now)
			if err != nil {
				return err
			}
			occIDs[k] = occID
			args = append(args, t.ConnectionID, occID, t.ScheduleGen, s.bindTime(s.trunc(t.DueAt)), s.bindTime(s.trunc(t.RunAt)),
				flag(advanced[t.ConnectionID]), t.ClaimBy)
		}
		// A tick with a claimer is recorded claimed by it; the rest
		// pending. WHERE …: SQLite needs a WHERE to read ON CONFLICT
		// after a SELECT.
		inserted, err = s.ids(ctx, tx, `WITH t(cid, oid, gen, due, run, ok, holder) AS (VALUES `+
			s.values(len(idx), "TEXT", "TEXT", s.d.IntType, s.d.TimeType, s.d.TimeType, s.d.IntType, "TEXT")+`)
			INSERT INTO occurrences (connection_id, id, trigger, priority, due_at, run_at, schedule_gen, attempt,
				retry_of, run_id, state, claimed_by, claimed_at, created_at)
			SELECT cid, oid, 'scheduled', 1, due, run, gen, 1, '', '',
				CASE WHEN holder = '' THEN 'pending' ELSE 'claimed' END, holder,
				CASE WHEN holder = '' THEN NULL ELSE CAST(? AS `+s.d.TimeType+`) END, CAST(? AS `+s.d.TimeType+`) FROM t WHERE ok = 1
			ON CONFLICT (connection_id) DO NOTHING
			RETURNING connection_id`, append(args, s.bindTime(now), s.bindTime(now))...)
		if err != nil {
			return err
		}
		for k, i := range idx {
			t := ticks[i]
			if t.ClaimBy == "" || !inserted[t.ConnectionID] {
				continue
			}
			claimed[i] = &store.Occurrence{ConnectionID: t.ConnectionID, ID: occIDs[k], Trigger: store.TriggerScheduled,
				DueAt: s.trunc(t.DueAt), RunAt: s.trunc(t.RunAt), ScheduleGen: t.ScheduleGen, Attempt: 1,
				State: store.OccurrenceClaimed, ClaimedBy: t.ClaimBy, ClaimedAt: now, CreatedAt: now}
		}
	}

	// 3. The advanced ones that already had an occurrence coalesced; so
	// did the ticks the recorder dropped before an advancing one.
	args = args[:0]
	coalesced, rest := 0, 0
	for _, i := range idx {
		t := ticks[i]
		n := 0
		switch {
		case inserted[t.ConnectionID]:
			out[i] = store.TickRecorded
			n = t.Dropped
		case advanced[t.ConnectionID]:
			out[i] = store.TickCoalesced
			n = 1 + t.Dropped
		default:
			rest++
		}
		coalesced += n
		args = append(args, t.ConnectionID, s.bindTime(s.trunc(t.DueAt)), n)
	}
	if coalesced > 0 {
		if _, err := s.exec(ctx, tx, `WITH t(id, due, n) AS (VALUES `+s.values(len(idx), "TEXT", s.d.TimeType, s.d.IntType)+`)
			UPDATE connections SET coalesced_ticks = coalesced_ticks + t.n, last_coalesced_at = t.due FROM t
			WHERE connections.id = t.id AND t.n > 0`, args...); err != nil {
			return err
		}
	}

	if rest == 0 {
		return nil
	}
	return s.settleRest(ctx, tx, ticks, idx, ids, byID, advanced, out)
}

// freshTicks reads the chunk's connections and returns those whose tick
// would advance their watermark; when there is none, it settles every
// tick of the chunk (duplicate or stale) as settleRest would.
func (s *Store) freshTicks(ctx context.Context, tx *txn, ticks []store.Tick, idx []int, ids []any, byID map[string]int,
	out []store.TickOutcome) (map[string]bool, error) {
	rows, err := s.query(ctx, tx, `SELECT id, state, schedule_gen, last_due_at, hold_code, backoff_until FROM connections WHERE id IN (`+
		placeholders(len(ids))+`)`, ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	fresh := map[string]bool{}
	settled := make(map[string]store.TickOutcome, len(ids))
	for rows.Next() {
		var (
			id      string
			state   store.ConnectionState
			gen     int64
			lastDue time.Time
			hold    string
			backoff time.Time
		)
		if err := rows.Scan(&id, &state, &gen, timeCol{&lastDue}, &hold, timeCol{&backoff}); err != nil {
			return nil, err
		}
		t := ticks[byID[id]]
		switch {
		case state != store.ConnectionActive || gen != t.ScheduleGen:
			settled[id] = store.TickStale
		case hold != "" || backoff.After(s.trunc(t.DueAt)):
			settled[id] = store.TickHeld
		case lastDue.IsZero() || lastDue.Before(s.trunc(t.DueAt)):
			fresh[id] = true
		default:
			settled[id] = store.TickDuplicate
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(fresh) == 0 {
		for _, i := range idx {
			out[i] = store.TickStale // a connection that is gone, unless found
			if o, ok := settled[ticks[i].ConnectionID]; ok {
				out[i] = o
			}
		}
	}
	return fresh, nil
}

// settleRest tells the ticks of the chunk that did not advance their
// connection apart: recorded before (duplicates), or of a schedule that
// moved on (stale).
func (s *Store) settleRest(ctx context.Context, tx *txn, ticks []store.Tick, idx []int, ids []any, byID map[string]int,
	advanced map[string]bool, out []store.TickOutcome) error {
	for _, i := range idx {
		if !advanced[ticks[i].ConnectionID] {
			out[i] = store.TickStale // unless found active on the same generation
		}
	}
	rows, err := s.query(ctx, tx, `SELECT id, state, schedule_gen, last_due_at, hold_code, backoff_until FROM connections WHERE id IN (`+
		placeholders(len(ids))+`)`, ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id      string
			state   store.ConnectionState
			gen     int64
			lastDue time.Time
			hold    string
			backoff time.Time
		)
		if err := rows.Scan(&id, &state, &gen, timeCol{&lastDue}, &hold, timeCol{&backoff}); err != nil {
			return err
		}
		i := byID[id]
		if advanced[id] || state != store.ConnectionActive || gen != ticks[i].ScheduleGen {
			continue
		}
		due := s.trunc(ticks[i].DueAt)
		if (hold != "" || backoff.After(due)) && (lastDue.IsZero() || lastDue.Before(due)) {
			out[i] = store.TickHeld
		} else {
			out[i] = store.TickDuplicate
		}
	}
	return rows.Err()
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ids runs a statement returning one text column and collects the set.
func (s *Store) ids(ctx context.Context, tx *txn, query string, args ...any) (map[string]bool, error) {
	rows, err := s.query(ctx, tx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

func drain(rows interface {
	Next() bool
	Err() error
	Close() error
}) error {
	for rows.Next() {
	}
	err := rows.Err()
	_ = rows.Close()
	return err
}
