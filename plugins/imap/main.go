// Command imap is the IMAP mail connector plugin. The host starts it; see
// package github.com/connhost/connhost/plugins/imap/imapconn for what it
// collects and how to configure it, and README.md beside this file for
// operators.
package main

import (
	"github.com/connhost/connhost/plugins/imap/imapconn"
	"github.com/connhost/connhost/sdk"
)

func main() { sdk.Serve(imapconn.New()) }
