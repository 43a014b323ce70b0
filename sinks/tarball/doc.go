// Package tarball is the tar:// output: one image as a docker-save archive
// in the original occystrap's layout, which `docker load` takes.
//
// Members, in this order: the config (its name as the source gave it, bytes
// unchanged), each layer as <layer name>/layer.tar (uncompressed) in Seq
// order, and manifest.json last:
//
//	[{"Layers": ["<l0>/layer.tar", ...], "RepoTags": ["<last part of image>:<tag>"], "Config": "<config name>"}]
//
// written with Python json.dumps' default separators and key order. The outer
// tar is USTAR (PAX only for a name USTAR cannot hold), every member has mode
// 0644, uid and gid 0 and mtime 0, and the archive is padded to 10240 bytes
// as Python's tarfile does. It is written to a temporary file next to the
// destination and renamed into place at the end, so an interrupted run leaves
// no partial archive under the destination's name.
//
// Order and speed: the sink declares Ordered (stage.SinkProperties), and each
// layer is streamed straight into the archive as it arrives, so nothing is
// copied twice. A tar header needs the member's size first: Item.Size when
// the source knows it, or the file's size for a file-backed body. Only a
// layer with unknown size and a streamed body is first spooled to a temporary
// file in TempDir (one extra local copy, rather than producing the stream
// twice). The copy from a file-backed body is done by the kernel
// (copy_file_range). Writing members out of order and spooling each would
// cost a second copy of every layer; the reorder buffer in front of the sink
// costs nothing but a bounded lag, as sources that fetch in parallel take
// window credits.
//
// Names come from the input: a config or layer name that is not a plain
// relative path (absolute, "..", a hidden or control-character component, a
// layer name with a "/") or that is one of the archive's own members
// (manifest.json, ...) is refused with ErrBadName before anything of it is
// written, the same names dir:// refuses (package sinks/internal/names).
//
// The config may arrive after the layers (filters that rewrite layers send it
// last). Layers that arrive before it are held, not copied: their bodies are
// files or re-openable streams, and they are written right after the config.
//
// Stream writes the same archive to any io.Writer in one pass (no seeking),
// with a RepoTags entry of the caller's choosing; the docker:// output pipes
// it into the engine's load request.
//
// A Writer holds one image: a second Sink is refused (multi-image sources
// need dir://?unique_names=true). A Writer and its sink are used by one
// goroutine; Close is safe to call more than once.
package tarball
