package registry

import (
	"errors"

	"github.com/occystrap/occystrap/internal/platform"
	"github.com/occystrap/occystrap/stage"
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
	ErrDiffID = stage.ErrDiffID
	// ErrTagUnknown: the repository exists but has no such tag (the
	// registry's MANIFEST_UNKNOWN, told apart by listing its tags).
	ErrTagUnknown = errors.New("the repository has no such tag")
	// ErrRepositoryUnknown: the registry has no such repository
	// (NAME_UNKNOWN, or a manifest and a tags list both not found).
	ErrRepositoryUnknown = errors.New("the registry has no such repository")
)
