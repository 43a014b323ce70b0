package oci

import "errors"

var (
	// ErrNoConfig is returned when an image's items ended without a config.
	ErrNoConfig = errors.New("no config received")
	// ErrMissingLayer is returned when a layer comes without content (a
	// source skipped it) or never comes.
	ErrMissingLayer = errors.New("layer missing")
	// ErrClosed is returned by Sink after Close.
	ErrClosed = errors.New("oci output is closed")
)
