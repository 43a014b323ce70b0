// Package tarball is the tar:// input: an image saved by `docker save`, in
// either the legacy layout (`<id>/layer.tar`, `<hex>.json`, manifest.json)
// or the Docker 25+ OCI layout (`blobs/sha256/<hex>`, layers possibly gzip
// or zstd compressed, plus manifest.json).
//
// The folder and package are named tarball, not tar, so that the package
// does not shadow archive/tar, which it and its callers import (the same
// choice as go-containerregistry's pkg/v1/tarball).
//
// Open indexes the archive once, reading headers only (archive/tar skips
// member contents by seeking), and records the offset and size of every
// member; it then reads manifest.json and the config, and resolves each
// layer's member (following the symlinks and hard links Docker writes for
// repeated layers). Nothing else is read until a layer body is opened.
//
// Emit sends the config (Seq -1, its bytes in Data) and then every layer in
// manifest order (Seq = index) with a body that reads the layer straight from
// the archive file: each Open opens its own file descriptor on the section
// of the archive that holds the layer, decompressing gzip or zstd blobs on
// the fly. There are no temporary files and no copies in memory, and any
// number of bodies may be open and read concurrently. Uncompressed bodies
// copied into an *os.File use copy_file_range where the kernel offers it.
//
// Names follow the original occystrap: the image and tag come from the first
// RepoTags entry, split at its last ':' ("latest" without one), or are
// "unknown":"unknown"; the config is named by its path in the archive; a
// layer by the directory of its `X/layer.tar`, or by the hex of its
// `blobs/sha256/X` (the compressed blob's hex for a compressed layer).
// Compressed layers are recognised by their magic bytes; their bodies also
// implement stage.Compressed, giving the blob as stored with the OCI layer
// media type for its compression (tar+gzip or tar+zstd).
//
// A Source is safe for concurrent use once opened; Close closes the index's
// file and must come after every body is closed.
package tarball
