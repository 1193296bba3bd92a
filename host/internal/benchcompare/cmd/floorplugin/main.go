// Command floorplugin is the plugin of make bench-compare's bare
// go-plugin floor: one gRPC method, served by go-plugin (see package
// floor).
package main

import "github.com/connhost/connhost/host/internal/benchcompare/floor"

func main() { floor.Serve() }
