// Package dovecottest starts a real Dovecot IMAP server for one test, so
// that the IMAP connector is tested against the server it will meet in
// production rather than against a fake.
//
// Start writes a throwaway configuration into a temporary directory
// (certificates, passwd file, maildir home, sockets, log), starts
// `dovecot -F` on two free loopback ports — plaintext with STARTTLS, and
// implicit TLS — and returns once the user can log in on both. t.Cleanup
// sends SIGTERM to the master, waits for it and for every process of its
// group, and removes the directory. Each call gets its own server, so
// parallel tests do not share state.
//
// Dovecot comes from the Debian package dovecot-imapd. Without it, tests
// are skipped, except when CI=true, where they fail: CI must install it.
// As root (as in CI) Dovecot runs as its usual users and mail belongs to
// nobody; as any other user it runs entirely as that user (Dovecot's
// non-root mode).
//
// The server certificate is signed by a CA made for the test: trust it
// with Server.CertPool (or Server.TLSConfig), or hand Server.CAFile to a
// connector's ca_file setting.
//
// # Usage
//
//	func TestSync(t *testing.T) {
//		t.Parallel()
//		srv := dovecottest.Start(t, "alice", "s3cret")
//		srv.CreateMailbox(t, "Archive")
//		uid := srv.Append(t, "INBOX", dovecottest.Message{
//			From:    []string{"Bob <bob@example.org>"},
//			To:      []string{"alice@example.org"},
//			Subject: "Hello",
//			Date:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
//			Text:    "Hi Alice,\nsee you.\n",
//		}.Bytes(), imap.FlagSeen)
//
//		// Point the connector under test at the server.
//		cfg := Config{Host: srv.Host, Port: srv.TLSPort, CAFile: srv.CAFile,
//			User: srv.User, Password: srv.Password}
//		// ... run it, then check what it saw of uid ...
//
//		// Simulate an administrator rebuilding the mailbox and a
//		// password change; both take effect without a restart.
//		srv.SetUIDValidity(t, "INBOX", srv.UIDValidity(t, "INBOX")+1)
//		srv.SetPassword(t, "n3w-secret")
//
//		// A logged-in client for checks of your own.
//		c := srv.Dial(t)
//		_ = c
//
//		// Canary: the password must never reach the server's log.
//		if strings.Contains(srv.Log(), "s3cret") {
//			t.Error("password in dovecot.log")
//		}
//	}
//
// The helpers fail the test with t.Fatal, so call them from the test's
// goroutine. SetPassword changes Server.Password; do not run it
// concurrently with other methods of the same server.
package dovecottest
