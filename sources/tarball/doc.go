// Package tarball is the tar:// input: an image archive in any layout the
// usual tools write, recognised by its content:
//
//   - a manifest.json (docker save, crane, skopeo docker-archive:, regctl,
//     podman) whose Config and Layers are member paths anywhere in the
//     archive: `<id>/layer.tar`, `blobs/sha256/<hex>`, `<hex>.tar`,
//     `<hex>.tar.gz`, ...;
//   - without one, an OCI image layout (`oci-layout`, `index.json`,
//     `blobs/`), nested indexes walked and the image chosen by platform
//     (layout.go).
//
// A whole archive compressed with gzip or zstd is first decompressed into a
// temporary file (removed by Close).
//
// The folder and package are named tarball, not tar, so that the package
// does not shadow archive/tar, which it and its callers import (the same
// choice as go-containerregistry's pkg/v1/tarball).
//
// Open indexes the archive once, reading headers only (archive/tar skips
// member contents by seeking), and records the offset and size of every
// member; it then reads the manifest and the config, and resolves each
// layer's member (following the symlinks and hard links tools write for
// repeated layers). Nothing else is read until a layer body is opened.
//
// Emit validates the config (image-config JSON types, rootfs of type layers,
// one sha256 DiffID per layer), then sends it (Seq -1, its bytes in Data) and
// every layer in manifest order (Seq = index) with a body that reads the
// layer straight from the archive file: each Open opens its own file
// descriptor on the section of the archive that holds the layer,
// decompressing gzip or zstd blobs on the fly. There are no temporary files
// and no copies in memory, and any number of bodies may be open and read
// concurrently. Every reader verifies the layer against its DiffID: the
// last Read returns ErrDiffID instead of io.EOF on a mismatch, and Close
// reads and checks what a consumer left after the tar's end. Unchecked gives
// a view without these checks, for check, which reports them itself.
//
// Names follow the original occystrap where its rule gives one: the image
// and tag come from the first RepoTags entry, split at its last ':'
// ("latest" without one), or are "unknown":"unknown"; the config is named by
// its path in the archive; a layer by the directory of its `X/layer.tar`,
// or by the hex of its `blobs/sha256/X` (the compressed blob's hex for a
// compressed layer). Where the rule gives none (the flat layouts), a layer
// is named by its DiffID's hex. An OCI layout's image is named by its
// io.containerd.image.name or org.opencontainers.image.ref.name annotation.
// Compressed layers are recognised by their magic bytes; their bodies also
// implement stage.Compressed, giving the blob as stored (verified against
// the DiffID once, first) with the OCI layer media type for its compression.
//
// A Source is safe for concurrent use once opened; Close closes the index's
// file and must come after every body is closed.
package tarball
