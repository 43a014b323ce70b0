// Package mediatype is the one place the media types occystrap reads and
// writes are named, as go-containerregistry's pkg/v1/types: the Docker
// image manifest v2 schema 2 types here, the OCI ones as image-spec's
// specs-go/v1 constants (v1.MediaTypeImageManifest and the others), which
// every caller uses directly. It imports nothing of this module, and
// everything in it is a constant or a pure function.
package mediatype

import (
	"strings"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker image manifest v2 schema 2 media types.
const (
	DockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	DockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerConfig   = "application/vnd.docker.container.image.v1+json"
	DockerTar      = "application/vnd.docker.image.rootfs.diff.tar"
	DockerGzip     = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	// DockerZstd is the original occystrap's zstd layer type: not a type
	// clients know (crane validate and containerd reject it), read but not
	// written.
	DockerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd"
)

// Prefixes of the layer media types of each family.
const (
	dockerLayerPrefix = "application/vnd.docker.image.rootfs."
	ociLayerPrefix    = "application/vnd.oci.image.layer."
)

// IsIndex reports whether mt is a manifest list or an OCI index.
func IsIndex(mt string) bool { return mt == DockerList || mt == v1.MediaTypeImageIndex }

// IsZstd reports a zstd layer media type.
func IsZstd(mt string) bool { return mt == v1.MediaTypeImageLayerZstd || mt == DockerZstd }

// IsLayer reports whether mt is a layer media type of either family
// (compressed or not, foreign or not).
func IsLayer(mt string) bool {
	return strings.HasPrefix(mt, ociLayerPrefix) || strings.HasPrefix(mt, dockerLayerPrefix)
}
