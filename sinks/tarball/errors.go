package tarball

import (
	"github.com/occystrap/occystrap/sinks/internal/names"
	"github.com/occystrap/occystrap/stage"
)

var (
	// ErrNoConfig is returned when the image's items ended without a config.
	ErrNoConfig = stage.ErrNoConfig
	// ErrOneImage is returned by a second Sink on one Writer.
	ErrOneImage = stage.Sentinel(stage.ErrOneImage, "tar:// output holds one image")
	// ErrSkippedLayer is returned for a layer that came without content: a
	// tarball must contain every layer.
	ErrSkippedLayer = stage.Sentinel(stage.ErrMissingLayer, "layer has no content, but a tarball needs every layer")
	// ErrClosed is returned by Sink after Close.
	ErrClosed = stage.Sentinel(stage.ErrClosed, "tar output is closed")
	// ErrBadName is returned for a config or layer name that is not a plain
	// relative path of the archive's scheme: the same names dir:// refuses
	// (package sinks/internal/names; the same sentinel).
	ErrBadName = names.ErrUnsafe
)
