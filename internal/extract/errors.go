package extract

import "errors"

// ErrUnsafeEntry is returned (wrapped, with the entry's name) for an entry
// that would write outside the target directory.
var ErrUnsafeEntry = errors.New("entry would write outside the target directory")
