package docker

import "errors"

var (
	// ErrOneImage is returned by a second Sink on one Output.
	ErrOneImage = errors.New("docker:// output holds one image")
	// ErrClosed is returned by Sink after Close.
	ErrClosed = errors.New("docker output is closed")
)
