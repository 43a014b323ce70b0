package imageinfo

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrNotObject: a manifest or config is JSON but not an object.
	ErrNotObject = errors.New("not a JSON object")
)
