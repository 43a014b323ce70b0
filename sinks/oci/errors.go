package oci

import "github.com/occystrap/occystrap/stage"

var (
	// ErrNoConfig is returned when an image's items ended without a config.
	ErrNoConfig = stage.ErrNoConfig
	// ErrMissingLayer is returned when a layer comes without content (a
	// source skipped it) or never comes.
	ErrMissingLayer = stage.ErrMissingLayer
	// ErrClosed is returned by Sink after Close.
	ErrClosed = stage.Sentinel(stage.ErrClosed, "oci output is closed")
)
