//go:build unix && !linux

package pluginimage

import (
	"errors"
	"io"
)

var errNoMemfd = errors.New("pluginimage: executable memfd unavailable")

// copyToMemfd always fails here: this system has no memfd, and Pin makes
// the directory copy.
func (im *Image) copyToMemfd(io.Reader) error { return errNoMemfd }
