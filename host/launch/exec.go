package launch

import (
	"errors"
	"os"

	"github.com/connhost/connhost/host/pluginimage"
)

// privateExec is what a launch execs: a verified private copy of a plugin
// binary, the exact bytes whose SHA-256 matched the pinned checksum, in a
// place no one else can swap. Exec'ing it closes the window go-plugin's
// SecureConfig leaves between hashing a path and exec'ing that path.
type privateExec struct {
	path  string     // what to exec
	files []*os.File // ExtraFiles the child needs to resolve path
	close func()     // releases the copy; the running child keeps its image
}

// privateExec returns the copy a launch of spec execs: a lease on
// spec.Image, which costs a stat of the binary, or, for a spec without an
// image (or whose image a rescan freed since the caller got it), a copy
// of its own made and verified for this launch.
func (l *Launcher) privateExec(spec Spec, name string) (*privateExec, error) {
	if spec.Image != nil {
		lease, err := spec.Image.Acquire()
		if err == nil {
			return &privateExec{path: lease.Path(), files: lease.Files(), close: lease.Release}, nil
		}
		if !errors.Is(err, pluginimage.ErrClosed) {
			return nil, err
		}
	}
	im, err := pluginimage.Pin(spec.Path, pluginimage.Options{Name: name, TempDir: l.cfg.TempDir, Want: spec.SHA256})
	if err != nil {
		return nil, err
	}
	defer im.Close() // the lease keeps it until the launch ends
	lease, err := im.Acquire()
	if err != nil {
		return nil, err
	}
	return &privateExec{path: lease.Path(), files: lease.Files(), close: lease.Release}, nil
}
