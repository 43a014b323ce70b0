package dir

import (
	"errors"

	"github.com/occystrap/occystrap/sinks/internal/names"
)

var (
	// ErrNoConfig is returned when an image's items ended without a config.
	ErrNoConfig = errors.New("no config received")
	// ErrBadName is returned for a config or layer name that is not a plain
	// relative path of the output's own scheme (package sinks/internal/names;
	// the same sentinel every output uses).
	ErrBadName = names.ErrUnsafe
	// ErrClosed is returned by Sink after Close.
	ErrClosed = errors.New("dir output is closed")
	// ErrMissingLayer is returned when a layer was skipped by the source but
	// its layer.tar is not in the output directory.
	ErrMissingLayer = errors.New("skipped layer is not in the output directory")
)
