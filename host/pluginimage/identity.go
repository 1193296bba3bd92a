package pluginimage

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// identity is what tells a file from its replacement without reading it:
// a rename over it changes the inode, a write the size or the times, and
// anything else (chmod, a touch, a hard link) the change time.
type identity struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds since the epoch
}

func identityOf(st *unix.Stat_t) identity {
	return identity{
		dev: uint64(st.Dev), ino: uint64(st.Ino), size: int64(st.Size),
		mtime: unix.TimespecToNsec(st.Mtim), ctime: unix.TimespecToNsec(st.Ctim),
	}
}

// statIdentity stats path, following symlinks as exec does.
func statIdentity(path string) (identity, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return identity{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return identityOf(&st), nil
}

// fileIdentity is the identity of an open file.
func fileIdentity(f *os.File) (identity, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return identity{}, &fs.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	return identityOf(&st), nil
}
