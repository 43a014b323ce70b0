package docker

import "errors"

var (
	// ErrImageNotFound is returned by Open for an image the engine does not
	// have; the error reads "Image not found: IMAGE:TAG", the original's text.
	//lint:ignore ST1005 the text is the original occystrap's, which users grep for
	ErrImageNotFound = errors.New("Image not found")
	// ErrArchive is returned when the saved archive does not match the
	// engine's description of the image.
	ErrArchive = errors.New("saved archive does not match the image")
)
