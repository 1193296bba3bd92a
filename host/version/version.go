// Package version holds the build version, set at link time with
// -ldflags "-X github.com/connhost/connhost/host/version.Version=…", and
// the build details Go records in the binary.
package version

import (
	"runtime"
	"runtime/debug"
)

// Version is the connhost version; "dev" for untagged builds.
var Version = "dev"

// Commit is the VCS revision, when the build sets it with -ldflags -X.
// Without it, Get takes the revision go build recorded (a build in a git
// checkout; not in a git worktree, whose .git is a file go build does not
// read).
var Commit = ""

// Info describes one build of connhost: the body of GET /v1/version and
// the client part of `connhost version`. It holds no secret.
type Info struct {
	// Version is the release version (git describe), "dev" when not set.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, when the
	// build recorded it (go build in a git checkout).
	Commit string `json:"commit,omitempty"`
	// CommitTime is the time of that revision (RFC 3339).
	CommitTime string `json:"commit_time,omitempty"`
	// Modified is true when the checkout had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// Go is the Go toolchain that built the binary.
	Go string `json:"go"`
	// OS and Arch are the platform the binary was built for.
	OS   string `json:"os"`
	Arch string `json:"arch"`
}

// Get returns this binary's build information.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok || Commit != "" {
		return info
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.CommitTime = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}
