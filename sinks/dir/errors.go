package dir

import (
	"github.com/occystrap/occystrap/sinks/internal/names"
	"github.com/occystrap/occystrap/stage"
)

var (
	// ErrNoConfig is returned when an image's items ended without a config.
	ErrNoConfig = stage.ErrNoConfig
	// ErrBadName is returned for a config or layer name that is not a plain
	// relative path of the output's own scheme (package sinks/internal/names;
	// the same sentinel every output uses).
	ErrBadName = names.ErrUnsafe
	// ErrClosed is returned by Sink after Close.
	ErrClosed = stage.Sentinel(stage.ErrClosed, "dir output is closed")
	// ErrMissingLayer is returned when a layer was skipped by the source but
	// its layer.tar is not in the output directory.
	ErrMissingLayer = stage.Sentinel(stage.ErrMissingLayer, "skipped layer is not in the output directory")
)
