// Package mounts is the mounts:// output: an image kept as one directory per
// layer and mounted as an overlay filesystem, in the original occystrap's
// layout.
//
//	PATH/<layer name>/layer.tar   each layer, uncompressed (as dir://)
//	PATH/<layer name>/layer/      the layer's own tree, as an overlayfs lower dir
//	PATH/manifest.json            as dir:// (Config still names the config's
//	PATH/catalog.json             original file name; see below)
//	PATH/rootfs/                  the overlay mount of every layer
//	PATH/working/, PATH/delta/    overlayfs workdir and upperdir
//	PATH/container-config.json    the image's config, exactly as fetched
//	PATH/config.json              the runtime spec (package sinks/internal/bundle)
//
// Layer tars, the manifest and the catalog are written by a dir:// Writer
// (package sinks/dir: layers in parallel, each atomically; a layer whose
// layer.tar is there is neither fetched nor written again). Each layer is
// then extracted, in parallel, into its own tree (package internal/extract
// with Overlay): nothing is merged; an opaque marker becomes the extended
// attribute trusted.overlay.opaque=y on its directory and ".wh.X" a character
// device 0:0 at X, at any depth (the original placed it right only at the
// top level). A tree is built under a temporary name and renamed to layer/,
// so a layer/ that exists is complete and is not extracted again.
//
// Then, as the original's write_bundle: rootfs, working and delta are made,
// and the layers are mounted, newest first, with one lowerdir+= option per
// layer (Linux 6.8 and later), or, when the kernel refuses that, one
// lowerdir=A:B:... option. A layer that occurs twice is mounted once, at its
// newest place, which gives the same view. The config is moved to
// container-config.json and config.json is written, so the manifest's Config
// no longer exists afterwards, as with the original.
//
// As with the original, the overlay stays mounted when the run ends: PATH is
// ready for `runc run`, and `umount PATH/rootfs` takes it down. A run into a
// PATH whose rootfs is still mounted fails (ErrMounted) before it writes
// anything; the original would mount a second overlay on top. If the
// mount or a later step fails, what the bundle step made (the mount, and
// rootfs, working and delta when it created them) is undone; the layer files
// and trees, each complete, stay for a later run to reuse.
//
// Paths under PATH are resolved as dir:// resolves them, never through a
// symlink, and layer names are refused as there; a layer name may not be a
// bundle name (rootfs, working, delta, config.json, container-config.json)
// nor hold ',' or ':' (the overlay's option separators). Each lower
// directory handed to the mount is checked to be a real directory first.
//
// It needs root (CAP_SYS_ADMIN for trusted.* attributes and the mount,
// CAP_MKNOD for the whiteout devices), as the original does.
//
// Verify checks the manifest, every layer's layer.tar and layer/, rootfs
// being a mount point, and the two config files (the original has no check
// of its own for this output).
//
// A Writer is safe for concurrent use, but a bundle holds one image.
package mounts
