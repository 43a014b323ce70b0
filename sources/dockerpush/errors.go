package dockerpush

import (
	"errors"

	"github.com/occystrap/occystrap/stage"
)

var (
	// ErrImageNotFound is returned by Open for an image the engine does not
	// have; the error reads "Image not found: IMAGE:TAG", the original's text.
	// The text is the original occystrap's, which users grep for.
	ErrImageNotFound = stage.Sentinel(stage.ErrImageNotFound, "Image not found")
	// ErrManifestList is returned when the engine pushes a manifest list
	// instead of a single image manifest.
	//lint:ignore ST1005 the text is the original occystrap's, which users grep for
	ErrManifestList = errors.New("Received a manifest list (multi-arch) instead of a single image manifest. This is unexpected for a Docker push. Please ensure the image is single-platform or use registry:// input which supports manifest list resolution.")
	// ErrManifestTimeout is returned when the push ended without a manifest.
	//lint:ignore ST1005 the text is the original occystrap's, which users grep for
	ErrManifestTimeout = errors.New("Timed out waiting for manifest from Docker push")
	// ErrPushed is returned when what the engine pushed does not match the
	// image it described: a blob missing, or a layer whose uncompressed
	// content is not the DiffID the image config lists.
	ErrPushed = errors.New("pushed image does not match the image")
)
