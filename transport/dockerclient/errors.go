package dockerclient

import "errors"

var (
	// ErrNotFound is returned by Inspect and Save for an image the engine
	// does not have.
	ErrNotFound = errors.New("image not found")
	// ErrConnect is returned when the engine's socket cannot be reached.
	ErrConnect = errors.New("cannot connect to the Docker engine")
	// ErrEngine is returned when the engine answers with an error.
	ErrEngine = errors.New("docker engine error")
	// ErrPush is returned by Push when the engine's answer reports an error.
	//lint:ignore ST1005 the text is the original occystrap's, which users grep for
	ErrPush = errors.New("Docker push failed")
)
