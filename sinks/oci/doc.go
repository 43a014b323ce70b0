// Package oci is the oci:// output: an image written as an OCI runtime
// bundle that runc can start, in the original occystrap's layout.
//
//	PATH/rootfs/                  the merged root filesystem
//	PATH/container-config.json    the image's config, exactly as fetched
//	PATH/config.json              the runtime spec (package sinks/internal/bundle)
//
// The original builds it as a dir:// output with expand and then moves things
// around; no manifest, catalog or layer directory is left. Here the layers
// are applied straight from their bodies, in Seq order
// (SinkProperties.Ordered), onto one tree (package internal/extract: safe
// extraction, whiteouts and opaque directories matched by path component), so
// no layer.tar is ever written. Owners recorded in the layers are applied
// when the Writer is told to (SameOwner; only root may).
//
// Everything is built in a temporary directory inside PATH and renamed into
// place at the end: rootfs (replacing an older one), then the two config
// files. A run that fails or is cancelled removes its temporary directory,
// and PATH too when the run created it, so it leaves nothing behind.
//
// Verify checks that rootfs is a directory, that container-config.json is
// there, and that config.json is a runtime spec whose root is rootfs (the
// original has no check of its own for this output).
//
// A Writer is safe for concurrent use, but a bundle holds one image: two
// sinks of one Writer running at once would replace each other's files.
package oci
