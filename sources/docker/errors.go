package docker

import (
	"errors"

	"github.com/occystrap/occystrap/stage"
)

var (
	// ErrImageNotFound is returned by Open for an image the engine does not
	// have; the error reads "Image not found: IMAGE:TAG", the original's text.
	// The text is the original occystrap's, which users grep for.
	ErrImageNotFound = stage.Sentinel(stage.ErrImageNotFound, "Image not found")
	// ErrArchive is returned when the saved archive does not match the
	// engine's description of the image.
	ErrArchive = errors.New("saved archive does not match the image")
)
