// Package imapconn is the IMAP connector: it collects the mailboxes and
// messages of one mail account over IMAP (RFC 3501/9051), from Gmail,
// Fastmail, iCloud or any Dovecot or Cyrus server, as connhost records.
//
// # Credential
//
// One static credential of two values, captured together:
// IMAP_USERNAME (the login, usually the address) and IMAP_PASSWORD (for
// Gmail, Fastmail and iCloud an app password). The connector logs in with
// LOGIN over TLS: implicit TLS (port 993) by default, or STARTTLS (port
// 143). Plaintext is refused unless the config says insecure_plaintext
// for a loopback server.
//
// # Streams
//
//   - mailboxes, keyed by name: the mailbox's name, hierarchy delimiter,
//     LIST attributes, and what EXAMINE reported (UIDVALIDITY, message
//     count, UIDNEXT, HIGHESTMODSEQ).
//   - messages, keyed by mailbox/UIDVALIDITY/UID (MessageKey): the
//     envelope (date, subject, from, to, cc, message-id, in-reply-to), the
//     internal date, flags, size, the CONDSTORE mod-sequence, and with
//     bodies "text" the first text/plain part decoded to UTF-8.
//
// The connector never changes the account: mailboxes are opened with
// EXAMINE and bodies fetched with BODY.PEEK, so \Seen is not set.
//
// # Incremental runs
//
// The checkpoint (State) holds each mailbox's UIDVALIDITY and the highest
// UID collected. A run asks only for UIDs above it, at most
// max_messages_per_run across mailboxes, a checkpoint after each batch of
// DefaultFetchBatch. When a mailbox's UIDVALIDITY changes, its UIDs are
// void: the mailbox is read again under the new UIDVALIDITY (new keys; the
// old records stay) and the run's progress says so.
//
// One connection is one account: keys do not name it, so a checkpoint
// collected from another host or login refuses the run (invalid_config,
// ErrOtherAccount) instead of letting the other account's messages
// overwrite the records under the same keys.
//
// On a server that offers CONDSTORE (RFC 7162: Dovecot, Cyrus, Gmail,
// Fastmail) the checkpoint also holds each mailbox's HIGHESTMODSEQ, and a
// run re-emits the collected messages whose flags changed since (UID FETCH
// … CHANGEDSINCE), within max_messages_per_run: a pass cut short goes on
// in the next run (MailboxState.FlagsTo, FlagsUID). Without CONDSTORE, flag changes of collected messages
// are not tracked. Expunged messages are not tracked either: their records
// stay.
//
// # Failures
//
// A LOGIN the server answers NO is credential_rejected: the host marks the
// credential invalid and does not retry. A network failure (refused,
// unreachable, timed out, connection lost) and a TLS failure (untrusted
// or mismatched certificate, a port that does not speak TLS) are
// retryable and say which. A config the server cannot satisfy (a mailbox
// it does not have, LOGIN refused without TLS) is invalid_config.
package imapconn
