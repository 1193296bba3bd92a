package imapconn_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/connhost/connhost/plugins/imap/dovecottest"
	"github.com/connhost/connhost/plugins/imap/imapconn"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/emersion/go-imap/v2"
)

// benchMessages is the mailbox a benchmark collects.
const benchMessages = 1000

// BenchmarkCollect times a first run over a mailbox of benchMessages
// small messages on a local Dovecot, through the connector in process
// (sdktest.Run: config, login, EXAMINE, UID SEARCH, batched UID FETCH,
// records and checkpoints through the SDK), beside the reference: a bare
// go-imap client that logs in and fetches the same items in one UID FETCH
// and keeps them in memory. IMAP_BENCH_ROUNDS (default 1) rounds run the
// two side by side, alternating, so a noisy machine weighs on both alike;
// compare them round by round (the ratio of each pair):
//
//	IMAP_BENCH_ROUNDS=10 go test -run '^$' -bench Collect -benchtime 1x ./imapconn/
func BenchmarkCollect(b *testing.B) {
	rounds := 1
	if n, err := strconv.Atoi(os.Getenv("IMAP_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	srv := dovecottest.Start(b, "bench@example.org", "bench-password")
	for i := range benchMessages {
		srv.Append(b, "INBOX", dovecottest.Message{From: []string{"Bob <bob@example.org>"}, To: []string{"bench@example.org"},
			Subject: fmt.Sprintf("message %d", i), MessageID: fmt.Sprintf("<m%d@example.org>", i), Text: "a short body\n"}.Bytes())
	}
	env := map[string]string{imapconn.UsernameEnv: srv.User, imapconn.PasswordEnv: srv.Password}
	for range rounds {
		for _, bodies := range []string{imapconn.BodiesNone, imapconn.BodiesText} {
			collectRound(b, srv, env, bodies)
		}
	}
}

// collectRound runs the connector, then the reference, once each.
func collectRound(b *testing.B, srv *dovecottest.Server, env map[string]string, bodies string) {
	{
		cfg := imapconn.Config{Host: srv.Host, Port: srv.TLSPort, CAFile: srv.CAFile, Bodies: bodies}
		b.Run("connector/bodies="+bodies, func(b *testing.B) {
			for b.Loop() {
				res := sdktest.Run(b, imapconn.New(), sdktest.Options{Config: cfg, Env: env})
				if res.Err != nil || len(res.RecordsOf(imapconn.StreamMessages)) != benchMessages {
					b.Fatalf("run: %v, %d messages", res.Err, len(res.RecordsOf(imapconn.StreamMessages)))
				}
			}
		})
		b.Run("bare-go-imap/bodies="+bodies, func(b *testing.B) {
			opts := &imap.FetchOptions{UID: true, Flags: true, Envelope: true, InternalDate: true, RFC822Size: true}
			if bodies == imapconn.BodiesText {
				opts.BodySection = []*imap.FetchItemBodySection{{Part: []int{1}, Peek: true, Partial: &imap.SectionPartial{Size: imapconn.DefaultMaxBodyBytes}}}
			}
			for b.Loop() {
				c := srv.Dial(b)
				if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
					b.Fatal(err)
				}
				msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, opts).Collect()
				if err != nil || len(msgs) != benchMessages {
					b.Fatalf("fetch: %v, %d messages", err, len(msgs))
				}
				_ = c.Logout().Wait()
				c.Close()
			}
		})
	}
}
