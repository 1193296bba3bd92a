package health

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/connhost/connhost/host/store"
)

// Item is one connection and its health.
type Item struct {
	Connection store.Connection
	Health     Health
}

// Lister pages through the connections.
type Lister interface {
	ListConnectionPage(ctx context.Context, f store.ConnectionPageFilter) (store.ConnectionPage, error)
}

// Report is the health of every connection at one moment: the count of
// each verdict (every verdict present, zeros included) and the attention
// list.
type Report struct {
	// Connections counts every connection read.
	Connections int
	// Counts has every verdict of Verdicts as a key.
	Counts map[Verdict]int
	// Attention is every connection whose health NeedsPerson, oldest
	// Since first (ties by connection id).
	Attention []Item
}

// Scan reads every connection, a page at a time, and derives its health
// with one credential metadata read per page: the cost is one page query
// and one batched credential query per store.MaxPageSize connections.
func Scan(ctx context.Context, l Lister, a *Assessor) (Report, error) {
	r := Report{Counts: make(map[Verdict]int, len(Verdicts))}
	for _, v := range Verdicts {
		r.Counts[v] = 0
	}
	f := store.ConnectionPageFilter{Limit: store.MaxPageSize}
	for {
		page, err := l.ListConnectionPage(ctx, f)
		if err != nil {
			return Report{}, err
		}
		hs, err := a.AssessAll(ctx, page.Connections)
		if err != nil {
			return Report{}, err
		}
		for i, h := range hs {
			r.Connections++
			r.Counts[h.Verdict]++
			if h.NeedsPerson {
				r.Attention = append(r.Attention, Item{Connection: page.Connections[i], Health: h})
			}
		}
		if page.Next == "" || len(page.Connections) == 0 {
			break
		}
		f.Cursor = page.Next
	}
	SortAttention(r.Attention)
	return r, nil
}

// Scan is Scan(ctx, l, a).
func (a *Assessor) Scan(ctx context.Context, l Lister) (Report, error) { return Scan(ctx, l, a) }

// SortAttention orders items oldest Since first; a zero Since (unknown)
// sorts first, since nothing says it is recent; ties by connection id.
func SortAttention(items []Item) {
	slices.SortStableFunc(items, func(a, b Item) int {
		if c := a.Health.Since.Compare(b.Health.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Connection.ID, b.Connection.ID)
	})
}

// Summary is the one-line account of an attention list, for the log:
// "attention: 2 connections need a person: credential_unavailable=1
// needs_credential=1", or "attention: no connection needs a person".
func Summary(items []Item) string {
	if len(items) == 0 {
		return "attention: no connection needs a person"
	}
	counts := map[Verdict]int{}
	for _, it := range items {
		counts[it.Health.Verdict]++
	}
	parts := make([]string, 0, len(counts))
	for _, v := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s=%d", v, counts[v]))
	}
	return fmt.Sprintf("attention: %d %s a person: %s", len(items),
		plural(len(items), "connection needs", "connections need"), strings.Join(parts, " "))
}

// key identifies an attention list's content for change detection: the
// connections, their verdicts and reasons.
func key(items []Item) string {
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintf(&b, "%s\x00%s\x00%s\x00%s\n", it.Connection.ID, it.Health.Verdict, it.Health.Reason, it.Health.Since)
	}
	return b.String()
}
