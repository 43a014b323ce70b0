package tarball

import (
	"errors"

	"github.com/occystrap/occystrap/sinks/internal/names"
)

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
	// ErrBadName is returned for a config or layer name that is not a plain
	// relative path of the archive's scheme: the same names dir:// refuses
	// (package sinks/internal/names; the same sentinel).
	ErrBadName = names.ErrUnsafe
)
