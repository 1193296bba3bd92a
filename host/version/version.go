// Package version holds the build version, set at link time with
// -ldflags "-X github.com/connhost/connhost/host/version.Version=…".
package version

// Version is the connhost version; "dev" for untagged builds.
var Version = "dev"
