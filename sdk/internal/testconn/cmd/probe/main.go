// Command probe serves the SDK's test connector (package testconn).
package main

import (
	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/internal/testconn"
)

func main() { sdk.Serve(testconn.Probe{}) }
