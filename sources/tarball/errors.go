package tarball

import (
	"errors"

	"github.com/occystrap/occystrap/stage"
)

var (
	// ErrLegacyFormat is returned for an archive with a `repositories` file
	// but no manifest.json (docker save before Docker 1.10). The text is the
	// original occystrap's.
	//lint:ignore ST1005 the text is the original occystrap's, which users grep for
	ErrLegacyFormat = errors.New("This tarball appears to be in legacy Docker format " +
		"(pre-1.10, circa 2016). occystrap only supports Docker 1.10+ tarballs " +
		"which contain manifest.json. To convert: docker load < old.tar && " +
		"docker save image:tag > new.tar")

	// ErrNoManifest is returned for an archive with neither manifest.json
	// nor repositories. The text is the original occystrap's.
	//lint:ignore ST1005 the text is the original occystrap's, which users grep for
	ErrNoManifest = errors.New("Invalid tarball: no manifest.json found. " +
		"This does not appear to be a valid docker save tarball.")

	// ErrBadManifest is returned when manifest.json cannot be used.
	ErrBadManifest = errors.New("invalid manifest.json")

	// ErrMissingMember is returned when manifest.json names a member the
	// archive does not hold (or a link that leads nowhere).
	ErrMissingMember = errors.New("member not found in archive")

	// ErrBadConfig is returned (before anything is sent) for a config that
	// is not an image config: truncated JSON, wrong JSON types, no DiffID
	// per layer.
	ErrBadConfig = errors.New("invalid image config")

	// ErrDiffID is returned when a layer's content is not what the
	// config's DiffID says.
	ErrDiffID = stage.ErrDiffID

	// ErrDigest is returned when a blob of an OCI layout does not have the
	// digest it is stored under.
	ErrDigest = stage.ErrDigestMismatch

	// ErrNoImage is returned for an OCI image layout with no image in it.
	ErrNoImage = errors.New("the image layout holds no image")

	// ErrTruncated is returned when a member's content runs past the end of
	// the archive.
	ErrTruncated = errors.New("archive is truncated")
)
