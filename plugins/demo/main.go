// Command demo is the demo connector plugin. The host starts it; see
// package github.com/connhost/connhost/plugins/demo/demo for what it does
// and how to configure it.
package main

import (
	"github.com/connhost/connhost/plugins/demo/demo"
	"github.com/connhost/connhost/sdk"
)

func main() { sdk.Serve(demo.New()) }
