// Package dir is the dir:// output: an image written as a directory in the
// original occystrap's layout.
//
//	PATH/<config name>              the config, exactly as fetched
//	PATH/<layer name>/layer.tar     each layer, uncompressed
//	PATH/manifest.json              or manifest-<image>-<tag>.json with UniqueNames
//	PATH/catalog.json               {image: {tag: manifest file}}
//	PATH/<manifest name>/           the merged root filesystem, with Expand
//
// Several images may share PATH (that is how a quay:// run shares layers):
// a layer whose layer.tar exists is not written again, and Has tells a source
// so before it fetches anything. Sources call Has(name) with the layer's
// folder name and send the layer with a nil Body when it returns true (each
// image's sink declares it in stage.SinkProperties.Has, so the engine wires
// this). Images that
// bring the same layer at the same time write it once: the others wait for
// that write and then find it in place.
//
// Names and paths: a layer's name must be one plain path component and a
// config's a plain relative path, neither claiming dir://'s own names
// (manifest*, catalog.json); anything else is refused with ErrBadName
// (package sinks/internal/names). Every path under PATH is then created,
// opened, renamed and removed without following any symlink already there
// (package internal/beneath): a symlink that an earlier image's expanded
// tree left in PATH never sends a later image's write, read or removal
// anywhere else.
//
// Every file is written under a temporary name in its final directory and
// renamed into place, so an interrupted run never leaves a partial layer.tar,
// manifest or catalog behind for a later run to trust; the expanded tree is
// built in a temporary directory and renamed into place at the end too.
//
// Layers do not depend on each other, so Consume writes them as they arrive,
// Parallel at a time, in any order, and the config may come before, between
// or after them; the manifest's Layers list is built by Seq at the end. Only
// Expand needs order (Properties reports it as Ordered): the tree is built by
// applying each layer.tar in Seq order as soon as it and the ones before it
// are on disk, overlapping with the writes of later layers. Extraction is
// safe (package internal/extract): no entry writes outside the tree.
//
// catalog.json is read, modified and written back (atomically) under one
// lock per catalog path for the whole process and an exclusive flock on
// PATH/.catalog.json.lock across processes, so many images written at once
// into one PATH, by one process or by several (shards of a bulk run, on one
// machine or on several sharing the directory over NFS v4), all end up in it.
//
// A Writer is safe for concurrent use: Sink may be called from many
// goroutines, one per image, and their sinks consume at the same time.
package dir
