// Command connhost is the connector host and its command line: "connhost
// serve" runs the host, the other subcommands operate it through its API.
// See package github.com/connhost/connhost/host/cli.
package main

import (
	"os"

	"github.com/connhost/connhost/host/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
