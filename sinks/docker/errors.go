package docker

import "github.com/occystrap/occystrap/stage"

var (
	// ErrOneImage is returned by a second Sink on one Output.
	ErrOneImage = stage.Sentinel(stage.ErrOneImage, "docker:// output holds one image")
	// ErrClosed is returned by Sink after Close.
	ErrClosed = stage.Sentinel(stage.ErrClosed, "docker output is closed")
)
