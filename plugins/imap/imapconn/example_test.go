package imapconn_test

import (
	"encoding/json"
	"fmt"

	"github.com/connhost/connhost/plugins/imap/imapconn"
)

// A connection config as an operator writes it, checked and completed the
// way Run and Check do.
func ExampleConfig() {
	var cfg imapconn.Config
	raw := `{"host":"imap.fastmail.com","mailboxes":["inbox","Archive"],"since":"2025-01-01"}`
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		panic(err)
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg.Normalize()
	fmt.Println(cfg.Addr(), cfg.TLS)
	fmt.Println(cfg.Mailboxes)
	fmt.Println(cfg.MaxMessagesPerRun, cfg.Bodies)
	// Output:
	// imap.fastmail.com:993 implicit
	// INBOX, Archive
	// 5000 none
}

// Plaintext is for a server on this machine only.
func ExampleConfig_Validate() {
	cfg := imapconn.Config{Host: "imap.example.com", InsecurePlaintext: true}
	fmt.Println(cfg.Validate())
	// Output:
	// imap: invalid config: insecure_plaintext is refused for "imap.example.com": the password would cross the network in the clear; it is allowed for localhost and loopback addresses only
}

func ExampleMessageKey() {
	fmt.Println(imapconn.MessageKey("[Gmail]/All Mail", 1712, 4711))
	// Output:
	// [Gmail]/All Mail/1712/4711
}
