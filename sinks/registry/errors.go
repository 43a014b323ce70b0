package registry

import (
	"errors"

	"github.com/occystrap/occystrap/stage"
)

// Sentinel errors; callers test them with errors.Is. Those of a category
// of the sink contract (stage/errors.go) also match the category.
var (
	// ErrNoConfig is an image that ended without a config, with the
	// original's text (stage.ErrNoConfig).
	ErrNoConfig = stage.Sentinel(stage.ErrNoConfig, "No config file was processed")
	// ErrUploadFailed wraps the first blob that could not be pushed; no
	// manifest is pushed then.
	//lint:ignore ST1005 the original occystrap's exact message
	ErrUploadFailed = errors.New("Upload failed")
	// ErrSkippedLayer is a layer that came without content and whose blob
	// the destination is not known to have.
	// It is a stage.ErrMissingLayer.
	ErrSkippedLayer = stage.Sentinel(stage.ErrMissingLayer, "layer has no content and no known blob in the destination")
	// ErrDigestMismatch is a passthrough blob whose bytes do not match the
	// digest its source gave.
	ErrDigestMismatch = stage.ErrDigestMismatch
)

// uploadError keeps the original's "Upload failed: ..." text.
type uploadError struct{ err error }

func (e *uploadError) Error() string { return "Upload failed: " + e.err.Error() }
func (e *uploadError) Unwrap() []error {
	return []error{ErrUploadFailed, e.err}
}
