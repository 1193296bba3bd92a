// Command github is the GitHub connector plugin. The host starts it; see
// package github.com/connhost/connhost/plugins/github/github for what it
// collects and how to configure it, and README.md beside this file for
// operators.
package main

import (
	"github.com/connhost/connhost/plugins/github/github"
	"github.com/connhost/connhost/sdk"
)

func main() { sdk.Serve(github.New()) }
