package tarball

import "errors"

var (
	// ErrNoConfig is returned when the image's items ended without a config.
	ErrNoConfig = errors.New("no config received")
	// ErrOneImage is returned by a second Sink on one Writer.
	ErrOneImage = errors.New("tar:// output holds one image")
	// ErrSkippedLayer is returned for a layer that came without content: a
	// tarball must contain every layer.
	ErrSkippedLayer = errors.New("layer has no content, but a tarball needs every layer")
	// ErrClosed is returned by Sink after Close.
	ErrClosed = errors.New("tar output is closed")
)
