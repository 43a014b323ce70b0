package registry

import (
	"errors"

	"github.com/occystrap/occystrap/internal/platform"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrNoPlatform: a manifest list has no entry for the platform asked
	// for. The text is the original's, which users grep for; the error
	// returned also names the platform asked for and those present.
	ErrNoPlatform = platform.ErrNoMatch
	// ErrManifestType: the registry answered with a manifest type we do not
	// read.
	ErrManifestType = errors.New("unknown manifest content type")
	// ErrDiffID: a layer's uncompressed content does not match the config.
	ErrDiffID = errors.New("layer DiffID does not match the image config")
)
