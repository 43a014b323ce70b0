//go:build !(cgo && isal)

package inflate

import (
	"context"
	"io"
)

// Linked reports whether this build links libisal (build tag isal, with
// cgo): ISA-L then runs in process, and igzip is not needed.
const Linked = false

// startCgo is never called in a build without libisal (New does not
// choose it).
func (z *Inflater) startCgo(context.Context, io.Reader) (io.ReadCloser, error) {
	panic("inflate: built without the isal tag")
}
