package registry

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression formats of --compression.
const (
	Gzip = "gzip"
	Zstd = "zstd"
)

// Media types of the manifests the sink builds. Gzip layers go in a Docker
// schema 2 manifest, as the original writes; zstd layers go in an OCI
// manifest, because the original's Docker "tar.zstd" layer type is not a
// type clients know (crane validate and containerd reject it).
const (
	MediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeOCITar      = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeOCIGzip     = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeOCIZstd     = "application/vnd.oci.image.layer.v1.tar+zstd"

	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerTar      = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerGzip     = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerZstd     = "application/vnd.docker.image.rootfs.diff.tar.zstd"
)

// Deterministic compression settings: the same layer tar always gives the
// same blob, whatever the machine, so blob-exists checks and the layer cache
// work across runs. pgzip splits the stream into fixed 1 MiB blocks, each
// deflated with the previous block's tail as dictionary: its output depends
// only on the input, the level and the block size, not on scheduling.
const (
	gzipLevel     = 6 // compress/flate's default: most of level 9's ratio at a fraction of its time
	gzipBlockSize = 1 << 20
	gzipBlocks    = 4 // blocks in flight per layer
)

// compressor wraps w in the chosen compression. The gzip header has mtime
// 0, no name and OS 255 (unknown), like the original's.
func compressor(format string, w io.Writer) (io.WriteCloser, error) {
	switch format {
	case Gzip, "":
		zw, err := pgzip.NewWriterLevel(w, gzipLevel)
		if err != nil {
			return nil, err
		}
		if err := zw.SetConcurrency(gzipBlockSize, gzipBlocks); err != nil {
			return nil, err
		}
		return zw, nil
	case Zstd:
		// One encoder goroutine keeps the frame layout independent of the
		// machine; the level is the original's 3 (SpeedDefault).
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	}
	return nil, fmt.Errorf("unknown compression %q (gzip or zstd)", format)
}

// layerMediaType is the layer media type for a compression.
func layerMediaType(format string) string {
	if format == Zstd {
		return MediaTypeOCIZstd
	}
	return MediaTypeDockerGzip
}

// isZstd reports a zstd layer media type.
func isZstd(mt string) bool { return mt == MediaTypeOCIZstd || mt == MediaTypeDockerZstd }

// dockerMediaType maps a layer media type into a Docker schema 2 manifest.
func dockerMediaType(mt string) string {
	switch mt {
	case MediaTypeOCIGzip:
		return MediaTypeDockerGzip
	case MediaTypeOCITar:
		return MediaTypeDockerTar
	}
	return mt
}

// ociMediaType maps a layer media type into an OCI manifest.
func ociMediaType(mt string) string {
	switch mt {
	case MediaTypeDockerGzip:
		return MediaTypeOCIGzip
	case MediaTypeDockerZstd:
		return MediaTypeOCIZstd
	case MediaTypeDockerTar:
		return MediaTypeOCITar
	}
	return mt
}
