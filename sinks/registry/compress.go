package registry

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/occystrap/occystrap/transport/mediatype"
)

// Compression formats of --compression.
const (
	Gzip = "gzip"
	Zstd = "zstd"
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

// layerMediaType is the layer media type for a compression. Gzip layers go
// in a Docker schema 2 manifest, as the original writes; zstd layers go in
// an OCI manifest, because the original's Docker "tar.zstd" layer type is
// not a type clients know (crane validate and containerd reject it).
func layerMediaType(format string) string {
	if format == Zstd {
		return v1.MediaTypeImageLayerZstd
	}
	return mediatype.DockerGzip
}

// dockerMediaType maps a layer media type into a Docker schema 2 manifest.
func dockerMediaType(mt string) string {
	switch mt {
	case v1.MediaTypeImageLayerGzip:
		return mediatype.DockerGzip
	case v1.MediaTypeImageLayer:
		return mediatype.DockerTar
	}
	return mt
}

// ociMediaType maps a layer media type into an OCI manifest.
func ociMediaType(mt string) string {
	switch mt {
	case mediatype.DockerGzip:
		return v1.MediaTypeImageLayerGzip
	case mediatype.DockerZstd:
		return v1.MediaTypeImageLayerZstd
	case mediatype.DockerTar:
		return v1.MediaTypeImageLayer
	}
	return mt
}
