package imapconn

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/connhost/connhost/sdk"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/hashicorp/go-hclog"
)

// maxBatchTextBytes bounds the text one fetch batch holds in memory with
// bodies text: the batch shrinks as max_body_bytes grows.
const maxBatchTextBytes = 16 << 20

// syncer is one run: the session, the config, and the state it advances
// and checkpoints.
type syncer struct {
	c   *Connector
	r   *sdk.Run
	s   *session
	cfg *Config
	st  *State
	log hclog.Logger
	// budget is how many more new messages this run may collect.
	budget int
	// condstore is whether the server offers CONDSTORE.
	condstore bool
	// last is the last checkpoint sent: an unchanged state is not sent
	// again.
	last []byte
	// counts for the closing log line.
	added, updated int
}

func (y *syncer) run(ctx context.Context) error {
	boxes, err := y.mailboxes(ctx)
	if err != nil {
		return err
	}
	if !y.condstore {
		y.log.Info("the server does not offer CONDSTORE: flag changes of messages already collected are not tracked")
	}
	// Positions of mailboxes no longer read are dropped: the state stays
	// as small as the account's selection.
	keep := map[string]bool{}
	for _, b := range boxes {
		keep[b.Mailbox] = true
	}
	for name := range y.st.Mailboxes {
		if !keep[name] {
			delete(y.st.Mailboxes, name)
		}
	}
	for i, b := range boxes {
		if err := y.mailbox(ctx, b, i+1, len(boxes)); err != nil {
			return err
		}
	}
	y.log.Info("run done", "mailboxes", len(boxes), "new_messages", y.added, "flag_updates", y.updated)
	return y.checkpoint()
}

// mailboxes lists the server's mailboxes and returns those the config
// selects, in the config's order (server order for "*"). A named mailbox
// the server does not list is a config error.
func (y *syncer) mailboxes(ctx context.Context) ([]*imap.ListData, error) {
	var list []*imap.ListData
	err := y.s.do(func() error {
		var err error
		list, err = y.s.c.List("", "*", nil).Collect()
		return err
	})
	if err != nil {
		return nil, commandFailure(ctx, y.s.addr, "LIST", err)
	}
	if y.cfg.Mailboxes.All {
		var out []*imap.ListData
		for _, l := range list {
			if selectable(l) {
				out = append(out, l)
			}
		}
		return out, nil
	}
	byName := map[string]*imap.ListData{}
	for _, l := range list {
		name := l.Mailbox
		if strings.EqualFold(name, DefaultMailbox) {
			name = DefaultMailbox
		}
		byName[name] = l
	}
	var out []*imap.ListData
	for _, n := range y.cfg.Mailboxes.Names {
		l, ok := byName[n]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %q is not on the server (it lists %s)", ErrNoMailbox, n, listNames(list))
		case !selectable(l):
			return nil, fmt.Errorf("%w: %q cannot be selected (%s)", ErrNoMailbox, n, attrs(l))
		}
		out = append(out, l)
	}
	return out, nil
}

// mailbox reads one mailbox: its record, the flag changes since the last
// run, then its new messages.
func (y *syncer) mailbox(ctx context.Context, l *imap.ListData, i, n int) error {
	name := l.Mailbox
	sel, err := y.s.selectMailbox(ctx, name, y.condstore)
	if err != nil {
		return err
	}
	if err := y.r.Emit(StreamMailboxes, name, newMailbox(l, sel)); err != nil {
		return err
	}
	ms := y.st.Mailboxes[name]
	switch {
	case ms == nil:
		ms = &MailboxState{UIDValidity: sel.UIDValidity}
		y.st.Mailboxes[name] = ms
	case ms.UIDValidity != sel.UIDValidity:
		msg := fmt.Sprintf("%s: UIDVALIDITY changed from %d to %d, so the server renumbered its messages: reading the mailbox again", name, ms.UIDValidity, sel.UIDValidity)
		y.log.Warn("UIDVALIDITY changed; reading the mailbox again", "mailbox", name, "old", fmt.Sprint(ms.UIDValidity), "new", fmt.Sprint(sel.UIDValidity))
		if err := y.r.Progress(StreamMessages, 0, 0, msg); err != nil {
			return err
		}
		*ms = MailboxState{UIDValidity: sel.UIDValidity}
	}
	if err := y.flagChanges(ctx, name, ms, sel); err != nil {
		return err
	}
	return y.newMessages(ctx, name, ms, sel, i, n)
}

// flagChanges re-emits the collected messages whose flags changed since
// the last run (CONDSTORE): UID FETCH <from>:<last UID> (UID)
// (CHANGEDSINCE <last HIGHESTMODSEQ>), then their records in batches,
// within the run's budget, a checkpoint after each batch. A pass the
// budget or a failure cuts short goes on in the next run (FlagsTo,
// FlagsUID); when it is done the position becomes the HIGHESTMODSEQ the
// pass started from, so a change made since is seen by the next pass.
func (y *syncer) flagChanges(ctx context.Context, name string, ms *MailboxState, sel *imap.SelectData) error {
	switch {
	case !y.condstore || sel.HighestModSeq == 0:
		ms.ModSeq, ms.FlagsTo, ms.FlagsUID = 0, 0, 0
		return nil
	case ms.UID == 0 || ms.ModSeq == 0:
		// Nothing collected under a mod-sequence yet: what is collected
		// from now on is current as of this SELECT or later.
		ms.ModSeq, ms.FlagsTo, ms.FlagsUID = sel.HighestModSeq, 0, 0
		return y.checkpoint()
	case ms.FlagsTo == 0 && sel.HighestModSeq <= ms.ModSeq:
		return nil
	case ms.FlagsTo == 0:
		ms.FlagsTo, ms.FlagsUID = sel.HighestModSeq, 0
	}
	if ms.FlagsUID < ms.UID {
		if y.budget == 0 {
			return y.r.Progress(StreamMessages, 0, 0, fmt.Sprintf("%s: flag changes skipped: max_messages_per_run (%d) reached; the next run goes on", name, y.cfg.MaxMessagesPerRun))
		}
		var changed []*imapclient.FetchMessageBuffer
		set := imap.UIDSet{imap.UIDRange{Start: imap.UID(ms.FlagsUID + 1), Stop: imap.UID(ms.UID)}}
		err := y.s.do(func() error {
			var err error
			changed, err = y.s.c.Fetch(set, &imap.FetchOptions{UID: true, ChangedSince: ms.ModSeq}).Collect()
			return err
		})
		if err != nil {
			return commandFailure(ctx, y.s.addr, "FETCH CHANGEDSINCE", err)
		}
		uids := make([]imap.UID, 0, len(changed))
		for _, m := range changed {
			if uint32(m.UID) > ms.FlagsUID && uint32(m.UID) <= ms.UID {
				uids = append(uids, m.UID)
			}
		}
		slices.Sort(uids)
		uids = slices.Compact(uids)
		todo := uids[:min(len(uids), y.budget)]
		done := 0
		for batch := range slices.Chunk(todo, y.batchSize()) {
			k, err := y.fetchAndEmit(ctx, name, ms.UIDValidity, batch)
			if err != nil {
				return err
			}
			y.updated += k
			y.budget -= len(batch)
			done += len(batch)
			ms.FlagsUID = uint32(batch[len(batch)-1])
			if err := y.checkpoint(); err != nil {
				return err
			}
			if err := y.r.Progress(StreamMessages, int64(done), int64(len(uids)),
				fmt.Sprintf("%s: flags changed on %d of %d messages", name, done, len(uids))); err != nil {
				return err
			}
		}
		if len(todo) < len(uids) {
			return y.r.Progress(StreamMessages, int64(done), int64(len(uids)),
				fmt.Sprintf("%s: max_messages_per_run (%d) reached with flags changed on %d more messages; the next run goes on", name, y.cfg.MaxMessagesPerRun, len(uids)-done))
		}
	}
	ms.ModSeq, ms.FlagsTo, ms.FlagsUID = ms.FlagsTo, 0, 0
	return y.checkpoint()
}

// newMessages collects the messages above the mailbox's position that
// the config's since admits, up to the run's budget, a batch at a time,
// checkpointing after each batch.
func (y *syncer) newMessages(ctx context.Context, name string, ms *MailboxState, sel *imap.SelectData, i, n int) error {
	if sel.NumMessages == 0 {
		// Empty: no UID below UIDNEXT can appear any more.
		if sel.UIDNext > 1 {
			ms.UID = max(ms.UID, uint32(sel.UIDNext)-1)
		}
		return y.checkpoint()
	}
	if y.budget == 0 {
		if sel.UIDNext > 0 && uint32(sel.UIDNext)-1 <= ms.UID {
			return nil // nothing new to skip
		}
		return y.r.Progress(StreamMessages, 0, 0, fmt.Sprintf("%s: skipped: max_messages_per_run (%d) reached; the next run goes on", name, y.cfg.MaxMessagesPerRun))
	}
	criteria := &imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: imap.UID(ms.UID + 1), Stop: 0}}}}
	if since := y.cfg.since(); !since.IsZero() {
		criteria.Since = since
	}
	var data *imap.SearchData
	err := y.s.do(func() error {
		var err error
		data, err = y.s.c.UIDSearch(criteria, nil).Wait()
		return err
	})
	if err != nil {
		return commandFailure(ctx, y.s.addr, "UID SEARCH", err)
	}
	var uids []imap.UID
	for _, u := range data.AllUIDs() {
		// "n:*" always holds the highest UID, even below n.
		if uint32(u) > ms.UID {
			uids = append(uids, u)
		}
	}
	slices.Sort(uids)
	uids = slices.Compact(uids)
	total := len(uids)
	complete := total <= y.budget
	if !complete {
		uids = uids[:y.budget]
	}
	done := 0
	for batch := range slices.Chunk(uids, y.batchSize()) {
		k, err := y.fetchAndEmit(ctx, name, ms.UIDValidity, batch)
		if err != nil {
			return err
		}
		y.added += k
		y.budget -= len(batch)
		done += len(batch)
		ms.UID = uint32(batch[len(batch)-1])
		if err := y.checkpoint(); err != nil {
			return err
		}
		if err := y.r.Progress(StreamMessages, int64(done), int64(total),
			fmt.Sprintf("%s (mailbox %d of %d): %d of %d new messages", name, i, n, done, total)); err != nil {
			return err
		}
	}
	if complete {
		// Every UID below UIDNEXT was collected or is before since, which
		// it stays: the next search starts above them.
		if sel.UIDNext > 0 {
			ms.UID = max(ms.UID, uint32(sel.UIDNext)-1)
		}
		return y.checkpoint()
	}
	return y.r.Progress(StreamMessages, int64(done), int64(total),
		fmt.Sprintf("%s: max_messages_per_run (%d) reached with %d new messages left; the next run goes on", name, y.cfg.MaxMessagesPerRun, total-done))
}

// batchSize is the messages per fetch: FetchBatch, fewer when texts are
// large.
func (y *syncer) batchSize() int {
	b := y.c.fetchBatch()
	if y.cfg.Bodies == BodiesText {
		b = max(1, min(b, maxBatchTextBytes/y.cfg.MaxBodyBytes))
	}
	return b
}

// fetchAndEmit fetches the messages of uids (one batch) and emits their
// records, in UID order. A UID expunged meanwhile is skipped. It returns
// how many records it emitted.
func (y *syncer) fetchAndEmit(ctx context.Context, mailbox string, uidValidity uint32, uids []imap.UID) (int, error) {
	opts := &imap.FetchOptions{UID: true, Flags: true, Envelope: true, InternalDate: true, RFC822Size: true, ModSeq: y.condstore}
	text := y.cfg.Bodies == BodiesText
	if text {
		// Extended: BODYSTRUCTURE, not BODY, so parts carry their
		// Content-Disposition and an attachment is known as one.
		opts.BodyStructure = &imap.FetchItemBodyStructure{Extended: true}
	}
	got, err := y.fetch(ctx, uids, opts)
	if err != nil {
		return 0, err
	}
	// A server may answer with an unsolicited FETCH for a UID (a flag
	// change another session made), beside or instead of the data asked
	// for: merge by UID, and ask once more for what came back without its
	// envelope. A message still without one is skipped, not written
	// empty; it is collected again by the next flag change or UIDVALIDITY.
	byUID := mergeFetches(got)
	var again []imap.UID
	for u, m := range byUID {
		if m.Envelope == nil {
			again = append(again, u)
		}
	}
	if len(again) > 0 {
		more, err := y.fetch(ctx, again, opts)
		if err != nil {
			return 0, err
		}
		for u, m := range mergeFetches(more) {
			if m.Envelope != nil {
				byUID[u] = m
			}
		}
	}
	msgs := make([]*imapclient.FetchMessageBuffer, 0, len(byUID))
	for u, m := range byUID {
		if m.Envelope == nil {
			y.log.Warn("the server sent no envelope for a message; skipped", "mailbox", mailbox, "uid", uint32(u))
			continue
		}
		msgs = append(msgs, m)
	}
	slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return cmp.Compare(a.UID, b.UID) })
	var texts map[imap.UID]textResult
	if text {
		if texts, err = y.fetchTexts(ctx, msgs); err != nil {
			return 0, err
		}
	}
	n := 0
	for _, m := range msgs {
		if m.UID == 0 {
			continue
		}
		rec := newMessage(mailbox, uidValidity, m)
		if text {
			t := texts[m.UID]
			rec.Text, rec.TextTruncated = &t.text, t.truncated
		}
		if err := y.r.Emit(StreamMessages, MessageKey(mailbox, uidValidity, uint32(m.UID)), rec); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// mergeFetches keys the FETCH answers by UID. Of several for one UID the
// one with an envelope is kept, with the flags of the latest answer.
func mergeFetches(got []*imapclient.FetchMessageBuffer) map[imap.UID]*imapclient.FetchMessageBuffer {
	byUID := make(map[imap.UID]*imapclient.FetchMessageBuffer, len(got))
	for _, m := range got {
		if m.UID == 0 {
			continue
		}
		old, ok := byUID[m.UID]
		switch {
		case !ok || old.Envelope == nil && m.Envelope != nil:
			byUID[m.UID] = m
		case m.Flags != nil:
			old.Flags = m.Flags
		}
	}
	return byUID
}

// fetch runs one UID FETCH of uids.
func (y *syncer) fetch(ctx context.Context, uids []imap.UID, opts *imap.FetchOptions) ([]*imapclient.FetchMessageBuffer, error) {
	var msgs []*imapclient.FetchMessageBuffer
	err := y.s.do(func() error {
		var err error
		msgs, err = y.s.c.Fetch(imap.UIDSetNum(uids...), opts).Collect()
		return err
	})
	if err != nil {
		return nil, commandFailure(ctx, y.s.addr, "UID FETCH", err)
	}
	return msgs, nil
}

// textResult is one message's decoded text.
type textResult struct {
	text      string
	truncated bool
}

// fetchTexts fetches the first text/plain part of each message, at most
// the octets max_body_bytes needs, one UID FETCH per part path (most
// messages share "1"), and decodes them.
func (y *syncer) fetchTexts(ctx context.Context, msgs []*imapclient.FetchMessageBuffer) (map[imap.UID]textResult, error) {
	out := make(map[imap.UID]textResult, len(msgs))
	type group struct {
		section *imap.FetchItemBodySection
		parts   map[imap.UID]textPart
	}
	groups := map[string]*group{}
	var order []string
	for _, m := range msgs {
		p, ok := findTextPart(m.BodyStructure)
		if !ok {
			// No text/plain part (HTML only, or no body): an empty text.
			out[m.UID] = textResult{}
			continue
		}
		// One fetch per part path and encoding (most messages share
		// "1"): a part shorter than the size asked comes back whole.
		size := fetchSize(p.encoding, y.cfg.MaxBodyBytes)
		k := fmt.Sprint(p.path, size)
		g := groups[k]
		if g == nil {
			g = &group{section: &imap.FetchItemBodySection{Part: p.path, Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: size}},
				parts: map[imap.UID]textPart{}}
			groups[k] = g
			order = append(order, k)
		}
		g.parts[m.UID] = p
	}
	for _, k := range order {
		g := groups[k]
		uids := make([]imap.UID, 0, len(g.parts))
		for u := range g.parts {
			uids = append(uids, u)
		}
		var bufs []*imapclient.FetchMessageBuffer
		err := y.s.do(func() error {
			var err error
			bufs, err = y.s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{g.section}}).Collect()
			return err
		})
		if err != nil {
			return nil, commandFailure(ctx, y.s.addr, "UID FETCH BODY.PEEK", err)
		}
		for _, b := range bufs {
			p, ok := g.parts[b.UID]
			if !ok {
				continue
			}
			raw := b.FindBodySection(g.section)
			complete := int64(len(raw)) >= int64(p.size)
			t, cut := decodeText(raw, p, complete, y.cfg.MaxBodyBytes)
			out[b.UID] = textResult{text: t, truncated: cut}
		}
	}
	return out, nil
}

// checkpoint sends the state when it changed since the last one.
func (y *syncer) checkpoint() error {
	b, err := y.st.encode(sdk.MaxCheckpointBytes)
	if err != nil {
		return err
	}
	if bytes.Equal(b, y.last) {
		return nil
	}
	if err := y.r.Checkpoint(json.RawMessage(b)); err != nil {
		return err
	}
	y.last = b
	return nil
}

// selectMailbox opens name read-only (EXAMINE), with CONDSTORE when asked.
// A mailbox the server refuses is a config error.
func (s *session) selectMailbox(ctx context.Context, name string, condstore bool) (*imap.SelectData, error) {
	var sel *imap.SelectData
	err := s.do(func() error {
		var err error
		sel, err = s.c.Select(name, &imap.SelectOptions{ReadOnly: true, CondStore: condstore}).Wait()
		return err
	})
	if err != nil {
		if ie := imapError(err); ie != nil && ie.Type == imap.StatusResponseTypeNo &&
			ie.Code != imap.ResponseCodeUnavailable && ie.Code != imap.ResponseCodeInUse {
			return nil, &sdk.Error{Code: codeInvalidConfig, Err: fmt.Errorf("%w: %q: %s", ErrNoMailbox, name, ie.Text),
				Message: fmt.Sprintf("mailbox %q cannot be selected: %s", name, serverText(ie))}
		}
		return nil, commandFailure(ctx, s.addr, "EXAMINE", err)
	}
	if sel.UIDValidity == 0 {
		return nil, &sdk.Error{Code: codeConnectorFailed, Err: ErrProtocol,
			Message: fmt.Sprintf("%s: EXAMINE %q: the server sent no UIDVALIDITY", s.addr, name)}
	}
	return sel, nil
}

// selectable reports whether a listed mailbox can be selected.
func selectable(l *imap.ListData) bool {
	for _, a := range l.Attrs {
		if a == imap.MailboxAttrNoSelect || a == imap.MailboxAttrNonExistent {
			return false
		}
	}
	return true
}

func attrs(l *imap.ListData) string {
	var s []string
	for _, a := range l.Attrs {
		s = append(s, string(a))
	}
	return strings.Join(s, " ")
}

// listNames names up to 20 listed mailboxes, for an error message.
func listNames(list []*imap.ListData) string {
	var names []string
	for i, l := range list {
		if i == 20 {
			names = append(names, fmt.Sprintf("and %d more", len(list)-20))
			break
		}
		names = append(names, fmt.Sprintf("%q", l.Mailbox))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
